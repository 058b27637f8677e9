"""MkDocs hooks: the parts of pages generated from the code and the results at build time.

A page asks for generated content with a marker line of its own, which the
build replaces (an unknown marker fails the build):

- ``<!-- generated: cli -->``: each command's ``--help``, as
  ``pipecat-wsclient COMMAND --help`` prints it at ``HELP_COLUMNS`` columns,
  rendered from the typer app itself (typer's ``CliRunner``): no hand-kept
  help to go stale. ``tests/test_docs.py`` checks the built page against the
  installed command's output.
- ``<!-- generated: bench -->``: the benchmark tables, rendered from
  ``bench/results/*.json`` by ``bench/report.py`` (which also writes
  ``bench/results/README.md``).
- ``<!-- generated: faults -->`` and ``<!-- generated: scenario-accuracy -->``:
  the figures of ``bench/results/faults.json`` and ``scenario_accuracy.json``.
- ``<!-- generated: modules -->``: every module of the package with the
  first line of its docstring.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pipecat_wsclient"
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
GITHUB = "https://github.com/pipecat-wsclient/pipecat-wsclient/blob/main/"

PROG = "pipecat-wsclient"
HELP_COLUMNS = 100
HELP_ENV = {"COLUMNS": str(HELP_COLUMNS), "TERMINAL_WIDTH": None, "FORCE_COLOR": None}
"""The environment the help is rendered in: the width fixed, no forced colors."""

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


# The command line ---------------------------------------------------------------------------


def commands() -> list[list[str]]:
    """Each command's words after ``pipecat-wsclient``: ``[]`` (the program), ``["call"]``..."""
    import typer

    from pipecat_wsclient.cli.main import app

    group = typer.main.get_command(app)
    return [[], *([name] for name in group.commands)]  # type: ignore[attr-defined]


def command_help(words: list[str]) -> str:
    """What ``pipecat-wsclient WORDS --help`` prints, trailing spaces and blank ends removed."""
    from typer.testing import CliRunner

    from pipecat_wsclient.cli.main import app

    result = CliRunner().invoke(app, [*words, "--help"], prog_name=PROG, env=HELP_ENV)
    if result.exit_code != 0:
        raise RuntimeError(f"{PROG} {' '.join(words)} --help failed: {result.output}")
    return tidy(result.output)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Terminal escapes: typer colors its help where it thinks it runs in CI (GITHUB_ACTIONS)."""


def tidy(text: str) -> str:
    """Help text without colors, trailing spaces or blank lines at either end."""
    return "\n".join(line.rstrip() for line in ANSI.sub("", text).splitlines()).strip("\n")


def cli_reference() -> str:
    """A section per command: its ``--help`` in a code block."""
    parts = []
    for words in commands():
        title = " ".join([PROG, *words])
        parts.append(f"## {title}\n\n```text\n$ {title} --help\n{command_help(words)}\n```\n")
    return "\n".join(parts)


# Benchmarks -----------------------------------------------------------------------------------


def _load_json(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def bench_tables() -> str:
    """bench/report.py's tables of bench/results, under this page's own title."""
    sys.path.insert(0, str(BENCH))  # report.py imports benchlib
    try:
        spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
        assert spec is not None and spec.loader is not None
        report = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(report)
        text: str = report.build(RESULTS)
    finally:
        sys.path.remove(str(BENCH))
    text = text.split("\n", 1)[1].lstrip()  # its title: this page has one
    return text.replace(
        "from the JSON files in this folder", "from the JSON files in `bench/results/`"
    )


def faults_table() -> str:
    """bench/results/faults.json: reconnection after a restart, outages, a stalled peer."""
    d = _load_json("faults")
    rows = [
        (
            "server restart (1012, back at once): reconnected after the server was back",
            f"{d['restart']['reconnected_after_server_back_ms']:g} ms",
        )
    ]
    for outage in d["outages"]:
        lost = f"{outage['audio_lost_s']:g} s"
        if outage["audio_lost_s"]:
            lost = (
                f"{outage['audio_lost_s']:g} s (reported dropped: "
                f"{outage['reported_dropped_s']:g} s; downtime {outage['downtime_s']:g} s, "
                "2 s buffered)"
            )
        rows.append((f"outage of {outage['outage_s']:g} s: audio lost", lost))
    rows.append(
        (
            "stalled peer (proxy stops forwarding): noticed after",
            f"{d['stall']['stall_noticed_after_s']:g} s",
        )
    )
    lines = ["| | |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows)]
    return "\n".join(lines) + "\n"


def scenario_accuracy_table() -> str:
    """bench/results/scenario_accuracy.json: how exact ``test``'s figures are."""
    d = _load_json("scenario_accuracy")
    names = {
        "answer_start_error_ms": "our answer start, after the bot wrote its first answer audio",
        "stop_error_ms": "our barge-in stop, after the bot interrupted itself",
        "response_ms": "response latency measured",
        "barge_in_ms": "barge-in measured",
        "clear_ms": "the bot's clear, after our speech onset",
    }
    lines = ["| | median | min-max |", "|---|---|---|"]
    for key, what in names.items():
        s = d[key]
        lines.append(f"| {what} | {s['median']:g} ms | {s['min']:g}-{s['max']:g} ms |")
    configured = d["configured"]
    return (
        f"{d['calls']} calls to the test bot (answering {configured['delay_s']:g} s after a "
        f"VAD stop of {configured['vad_stop_s']:g} s; VAD start {configured['vad_start_s']:g} "
        "s), the bot's own timeline on the shared monotonic clock as the reference:\n\n"
        + "\n".join(lines)
        + "\n\nTranscripts of the known answer: "
        + "; ".join(f'"{t}"' for t in d["transcripts"])
        + ".\n"
    )


# The package's modules ------------------------------------------------------------------------


def first_line(docstring: str | None) -> str:
    """A docstring's first line in Markdown: ``x`` and :role:`x` as `x`."""
    line = (docstring or "").strip().split("\n", 1)[0]
    line = re.sub(r":[a-z]+:`~?\.?([^`]+)`", r"`\1`", line)
    return line.replace("``", "`").replace("|", "\\|")


def modules_table() -> str:
    """Every module of the package, linked, with its docstring's first line."""
    lines = ["| module | |", "|---|---|"]
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        relative = path.relative_to(SRC.parent)
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        link = f"{GITHUB}src/{relative.as_posix()}"
        lines.append(f"| [`{name}`]({link}) | {first_line(doc)} |")
    return "\n".join(lines) + "\n"


# The hook -----------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "bench": bench_tables,
    "faults": faults_table,
    "scenario-accuracy": scenario_accuracy_table,
    "modules": modules_table,
}


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with what it names."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown marker {match.group(0)}")
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)
