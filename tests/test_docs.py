"""The documentation holds (issue 27): the site builds, and what it shows is what the code does.

- The site builds with warnings as errors (``mkdocs build --strict``: broken
  links and anchors, docstrings griffe cannot read, a page left out of the
  nav), as ``python3 dev.py docs`` and CI build it.
- The command-line reference is each command's ``--help``, as the installed
  ``pipecat-wsclient`` prints it, for every command the app has.
- The scenario reference names every key a scenario file takes.
- The README, the package index's front page, stays short, links absolutely,
  and its commands and scenario are real.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer
import yaml

from pipecat_wsclient.cli.main import app
from pipecat_wsclient.scenario import model
from support.commands import CLI

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXE = Path(sys.executable).parent / "pipecat-wsclient"
COMMAND = [str(EXE)] if EXE.exists() else CLI
HELP_COLUMNS = 100  # docs/hooks.py renders the help at this width

README_MAX_LINES = 250


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strict into a temporary folder as ``python3 dev.py docs`` builds it."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-6000:]
    return out


def page_text(site: Path, page: str) -> str:
    """A built page's text: tags dropped, entities decoded, trailing spaces gone."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return "\n".join(line.rstrip() for line in text.splitlines())


def tidy(text: str) -> str:
    """As docs/hooks.py tidies the help: no colors, trailing spaces or blank ends."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def commands() -> list[list[str]]:
    return [[], *([name] for name in typer.main.get_command(app).commands)]  # type: ignore[attr-defined]


def installed_help(words: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "FORCE_COLOR")}
    run = subprocess.run(
        [*COMMAND, *words, "--help"],
        env={**env, "COLUMNS": str(HELP_COLUMNS)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return tidy(run.stdout)


def test_the_site_builds_with_warnings_as_errors(site):
    for page in ("api", "cli", "benchmarks", "testing", "changelog", "contributing"):
        assert (site / page / "index.html").exists(), page


def test_the_command_line_reference_is_each_commands_help(site):
    page = page_text(site, "cli")
    words = commands()
    assert {"call", "serve", "load", "test", "phone", "demo"} <= {w[0] for w in words if w}
    with ThreadPoolExecutor(max_workers=4) as pool:
        helps = list(pool.map(installed_help, words))
    for command, help_text in zip(words, helps, strict=True):
        title = " ".join(["pipecat-wsclient", *command])
        assert f"$ {title} --help\n{help_text}\n" in page, f"{title} --help differs from the page"
    raw = (site / "cli" / "index.html").read_text(encoding="utf-8")
    sections = re.findall(r'<h2 id="(pipecat-wsclient[^"]*)"', raw)
    assert sections == ["-".join(["pipecat-wsclient", *w]) for w in words]


def test_the_api_reference_documents_the_public_api(site):
    import pipecat_wsclient

    page = page_text(site, "api")
    for name in pipecat_wsclient.__all__:
        if name != "__version__":
            assert f"pipecat_wsclient.{name}" in page, name


def test_the_benchmark_tables_are_rendered_from_the_results(site):
    page = page_text(site, "benchmarks")
    for section in ("Goals", "Concurrent streams", "Pacing", "Reconnection", "Scenario accuracy"):
        assert section in page, section
    assert "<!-- generated" not in page


def _table_keys(markdown: str, heading: str) -> list[set[str]]:
    """The first column's `key`s of each table under ``## heading``."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    tables = re.split(r"\n\n(?=[^|])", section)
    found = []
    for table in tables:
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        if rows:
            found.append({re.match(r"\| `([^`]+)`", row).group(1) for row in rows})  # type: ignore[union-attr]
    return found


def test_the_scenario_reference_names_every_key():
    text = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    scenario, turns, turn_keys, expectations = _table_keys(text, "The scenario file, key by key")
    assert scenario == model._SCENARIO_KEYS
    assert turns == set(model.ACTIONS)
    assert turn_keys == {"name", "expect", "answer_timeout"}
    assert expectations == set(model._EXPECT_TYPES)


def test_the_readme_is_short_and_links_absolutely():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    relative = re.findall(r"\]\((?!https?://)([^)]*)\)", text)
    assert not relative, f"the package index cannot follow relative links: {relative}"


def _readme_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def test_the_readme_commands_take_the_options_they_are_given():
    group = typer.main.get_command(app)
    lines = [
        line.split("#", 1)[0]
        for block in _readme_blocks("bash")
        for line in block.replace("\\\n", " ").splitlines()
        if line.startswith("pipecat-wsclient ")
    ]
    assert len(lines) >= 5
    for line in lines:
        words = shlex.split(line.rstrip(" &"))
        command = group.commands.get(words[1])  # type: ignore[attr-defined]
        assert command is not None, line
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        given = {w.split("=", 1)[0] for w in words[2:] if w.startswith("--")}
        assert given <= options, f"{line}: no {given - options}"


def test_the_readme_scenario_is_a_valid_scenario():
    (block,) = _readme_blocks("yaml")
    scenario = model.parse_scenario(yaml.safe_load(block))
    assert scenario.protocol == "twilio"
    assert [turn.kind for turn in scenario.turns] == ["say", "barge_in", "dtmf", "hangup"]
