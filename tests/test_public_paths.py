"""Public paths keep working (issue 22, item 5): what the README and docs name imports.

Every dotted ``pipecat_wsclient...`` name in the README, the docs and the
examples is imported (a module, or a name in one); so are the entry points:
the ``pipecat-wsclient`` script's target, the pytest plugin's entry point and
``python -m pipecat_wsclient``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"\bpipecat_wsclient(?:\.[A-Za-z_]\w*)+")
NOT_PATHS = {"pipecat_wsclient.sent", "pipecat_wsclient.websockets"}
"""Strings that look like paths: SENT_KEY's value, the websockets logger's name."""


def _documented() -> list[str]:
    files = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.py")]
    found = {m.rstrip(".") for f in files for m in NAMED.findall(f.read_text())}
    return sorted(found - NOT_PATHS)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", _documented())
def test_documented_path_imports(dotted):
    if dotted.startswith("pipecat_wsclient.locust"):
        # Importing Locust monkey-patches the process (gevent): only find it here;
        # tests/locust imports it in Locust's own processes.
        assert importlib.util.find_spec(dotted) is not None
        return
    assert _resolve(dotted) is not None


def test_entry_points_resolve():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    targets = [*project["scripts"].values(), *project["entry-points"]["pytest11"].values()]
    for target in targets:
        module, _, attr = target.partition(":")
        obj = importlib.import_module(module)
        if attr:
            assert callable(getattr(obj, attr))


def test_python_dash_m_runs_the_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "pipecat_wsclient", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for command in ("call", "serve", "load", "test", "phone", "demo"):
        assert command in out.stdout
