"""Issue 25, item 6: what the far end writes cannot drive the terminal; headers go out as given.

Found by the attack run: a hostile server's close reason reached the
terminal with its escape sequences and line breaks (a fake "FAKE: all
checks passed" line); a ``--header`` name with CR/LF was sent raw (an
injected header line arrived); an invalid header value was echoed in full,
token included; ``load --header`` values were feared on the workers'
command lines.

The promises attacked here, against real servers and the command line in
subprocesses:

- far-end text (close reasons, errors built from them) reaches the
  terminal with every control character escaped and as plain text (a
  ``[/]`` in it is no rich markup: no crash), on ``call``'s and ``test``'s
  tables and error lines; ``--json`` keeps it raw and valid; JUnit XML
  parses and holds it escaped;
- a header name must be a token and a value holds no CR, LF or other
  control character, for ``--header`` and a scenario's ``headers``: one
  line, exit 2, no connection, and the message never shows the value; a
  URI with a line break or a space is refused too (not silently cleaned);
- ``load --processes`` gives its workers the headers on stdin: no worker's
  command line holds them (and with ``--header @FILE``, no command line at all).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support.commands import cli
from support.servers import closing_server, echo_server

pytestmark = pytest.mark.slow  # real calls and command-line processes (about 20 s)

CLI = [sys.executable, "-m", "pipecat_wsclient"]

HOSTILE_REASON = (
    "\x1b[2J\x1b[31mFAKE: all checks passed\r\n\x1b]0;pwned\x07 [/] [red]x\u202egnp.exe"
)
"""Clears the screen, paints, starts a fake line, sets the window title, closes a rich
tag that was never opened, reverses what follows: 71 bytes, under the 123 a close allows."""

CONTROL = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]] + ["\u202e"]


def assert_inert(text: str) -> None:
    """No control character, no bidi override: nothing a terminal acts on but line ends."""
    for line in text.splitlines():
        found = [c for c in line if c in CONTROL and c != "\t"]
        assert not found, f"control characters {found!r} in {line!r}"
    assert "\r" not in text
    assert "FAKE: all checks passed\n" not in text  # the fake line never starts a line


async def test_call_shows_a_hostile_close_reason_escaped() -> None:
    async with closing_server(4000, HOSTILE_REASON, after=0.3) as server:
        code, out, err = await cli("call", server.uri, "--listen", "0")
    assert code == 7, err
    assert_inert(out + err)
    assert "Traceback" not in err and "MarkupError" not in err
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1, err
    assert "\\x1b[2J\\x1b[31mFAKE: all checks passed\\r\\n\\x1b]0;pwned\\x07" in error[0]
    assert "[/] [red]x\\u202egnp.exe" in error[0]
    assert "\\x1b[2J" in out  # the table's "ended" row, escaped too


async def test_call_json_keeps_the_reason_raw_and_valid() -> None:
    async with closing_server(4000, HOSTILE_REASON, after=0.3) as server:
        code, out, err = await cli("call", server.uri, "--listen", "0", "--json")
    assert code == 7, err
    report = json.loads(out)  # valid JSON: json.dumps escapes every control character
    assert report["end"]["reason"] == HOSTILE_REASON
    assert "\x1b" not in out and "\r" not in out


async def test_test_table_and_junit_escape_a_hostile_reason(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("turns:\n  - say: hello\n  - say: again\n")
    junit = tmp_path / "junit.xml"
    async with closing_server(4000, HOSTILE_REASON, after=0.5) as server:
        code, out, err = await cli(
            "test", str(scenario), "--uri", server.uri, "--no-transcripts",
            "--junit", str(junit), "--out-dir", str(tmp_path / "out"),
        )  # fmt: skip
    assert code == 7, err
    assert_inert(out + err)
    assert "Traceback" not in err and "MarkupError" not in err
    assert "\\x1b[2J" in out
    tree = ET.parse(junit)  # an ESC or a BEL would make the file unreadable
    messages = [e.get("message", "") for e in tree.iter() if e.tag in ("error", "failure")]
    assert any("\\x1b[2J" in m for m in messages), messages
    assert not any("\x1b" in m for m in messages)


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        ("X-Evil\r\nInjected: 1: sekrit", "header name 'X-Evil\\r\\nInjected' is not a token"),
        ("X Evil: sekrit", "header name 'X Evil' is not a token"),
        ("X-Key: sek\r\nInjected: rit", "holds a CR"),
        ("X-Key: sek\nInjected: rit", "holds a line break (LF)"),
        ("X-Key: sekrit\x01", "holds the control character \\x01"),
        ("X-Key: sekrit\x7f", "holds the control character \\x7f"),
    ],
)
async def test_a_bad_header_is_refused_without_its_value(header: str, cause: str) -> None:
    async with echo_server() as server:
        code, _, err = await cli("call", server.uri, "--header", header, "--listen", "0")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --header"), err
    assert cause in lines[0]
    value = header.split(":", 1)[1] if cause.startswith("holds") else "sekrit"
    assert "sek" not in err and value.strip()[:6] not in err
    assert server.connections == 0


@pytest.mark.parametrize("tail", ["?x=1\r\nInjected: y", "\nInjected: y", "?x=1 2", "/ws\x1b[2J"])
async def test_a_uri_with_a_line_break_is_refused_not_cleaned(tail: str) -> None:
    """``urlsplit`` drops CR and LF silently: the call would go to another URI than given."""
    async with echo_server() as server:
        code, _, err = await cli("call", server.uri + tail, "--listen", "0")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "no space or control character" in err
    assert_inert(err)
    assert server.connections == 0


async def test_a_bad_scenario_header_is_refused_without_its_value(tmp_path: Path) -> None:
    async with echo_server() as server:
        for headers in ('{"X-Evil\\r\\nInjected": sekrit}', '{X-Key: "sek\\r\\nInjected: rit"}'):
            scenario = tmp_path / "s.yaml"
            scenario.write_text(f"uri: {server.uri}\nheaders: {headers}\nturns: [{{say: hi}}]\n")
            code, _, err = await cli("test", str(scenario), "--no-transcripts")
            assert code == 2, err
            assert len(err.strip().splitlines()) == 1 and "headers" in err, err
            assert "sekrit" not in err and "Injected: rit" not in err
    assert server.connections == 0


async def test_a_header_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "headers"
    good.write_text("# the bot's key\nX-Api-Key: sekrit\n\nX-Team: voice\n")
    async with echo_server() as server:
        code, _, err = await cli(
            "call", server.uri, "--header", f"@{good}", "--listen", "0", "--duration", "0.5"
        )
    assert code == 0, err
    assert server.request_headers[0]["x-api-key"] == "sekrit"
    assert server.request_headers[0]["x-team"] == "voice"
    bad = tmp_path / "bad"
    bad.write_text("X-Api-Key: sek\x01rit\n")
    code, _, err = await cli("call", "ws://127.0.0.1:9/ws", "--header", f"@{bad}")
    assert code == 2 and f"--header @{bad}" in err and "sek" not in err.replace(str(bad), "")
    code, _, err = await cli("call", "ws://127.0.0.1:9/ws", "--header", "@/no/such/file")
    assert code == 2 and "No such file" in err


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = (ppid, f.read())
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("how", ["option", "file"])
async def test_load_workers_never_have_the_headers_on_their_command_line(
    tmp_path: Path, how: str
) -> None:
    secret = "sekrit-" + how
    header = f"X-Api-Key: {secret}"
    if how == "file":
        (tmp_path / "headers").write_text(header + "\n")
        header = f"@{tmp_path / 'headers'}"
    async with echo_server() as server:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "load", server.uri, "--protocol", "raw", "--duration", "20",
            "--concurrency", "2", "--processes", "2", "--header", header, "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while server.connections < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # both workers are dialing by now
            workers: set[int] = set()
            for _ in range(10):
                table = _processes()
                workers |= {pid for pid, (ppid, _) in table.items() if ppid == proc.pid}
                holding = [pid for pid, (_, line) in table.items() if secret.encode() in line]
                allowed = {proc.pid} if how == "option" else set()  # what the user typed
                assert set(holding) <= allowed, [table[p][1] for p in holding]
                await asyncio.sleep(0.1)
            assert len(workers) == 2, workers
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert server.connections >= 2
    assert all(h.get("x-api-key") == secret for h in server.request_headers)
    assert proc.returncode == 130, err.decode()
    assert json.loads(out)["generator"]["processes"] == 2
