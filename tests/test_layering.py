"""The package's layering (issue 22): imports run downwards only, modules stay readable.

``cli -> locust -> load -> scenario, phone, serve -> caller -> audio, protocols, core``:
no module imports a package above its own, nothing outside ``cli/`` imports the
command line (but the ``python -m`` entry point), ``audio/`` imports nothing else of
the package, and no module is longer than 600 lines. Every import counts, also those
inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pipecat_wsclient"

RANK = {
    "core": 0,
    "audio": 0,
    "protocols": 1,
    "caller": 2,
    "serve": 3,
    "scenario": 3,
    "phone": 3,
    "load": 4,
    "locust": 5,
    "cli": 6,
    "entry": 7,
}
"""A package may import its own modules and packages of a lower rank."""

MAX_LINES = 600


def _package(module: str) -> str:
    """``pipecat_wsclient.caller.call`` -> ``caller``; a top-level module -> ``core``."""
    parts = module.split(".")
    if module == "pipecat_wsclient.__main__":
        return "entry"  # ``python -m pipecat_wsclient``: the command line's entry point
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "core"


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``pipecat_wsclient`` module a file imports (line, module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("pipecat_wsclient"):
                found.append((node.lineno, node.module))
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name) for a in node.names if a.name.startswith("pipecat_wsclient")
            ]
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    """(module, line, its package, imported package) for imports that leave the package."""
    modules = _modules()
    edges = []
    for module, path in modules.items():
        own = _package(module)
        for line, imported in _imports(path):
            if imported not in modules:  # a name from a module, not a module
                continue
            other = _package(imported)
            if imported == "pipecat_wsclient":
                other = "core"  # the public API at the root is the transport
            if other != own:
                edges.append((module, line, own, other))
    return edges


def test_imports_run_downwards_only():
    upward = [
        f"{module}:{line} ({own}) imports {other}"
        for module, line, own, other in _edges()
        if RANK[other] >= RANK[own]
    ]
    assert upward == []


def test_nothing_but_the_entry_point_imports_the_command_line():
    users = {m for m, _, own, other in _edges() if other == "cli"}
    assert users == {"pipecat_wsclient.__main__"}


def test_audio_imports_nothing_else_of_the_package():
    assert [(m, line) for m, line, own, _ in _edges() if own == "audio"] == []


def test_no_import_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for _, _, own, other in _edges():
        graph.setdefault(own, set()).add(other)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [p for p in graph if reaches(p, p, {p})] == []


def test_no_module_is_longer_than_600_lines():
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
