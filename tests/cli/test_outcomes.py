"""Outcomes a CI gate can trust (issue 23, items 1 and 5), through the real command line.

Invariants: a call is one connection (no redial unless ``--reconnect``); a bot
that closes abnormally fails the call with exit 7 naming the close code, in
``call`` and in ``load`` (``closed_CODE``, counted in ``error_rate``); ``load``
exits 1 when a call failed unless ``--max-error-rate`` allows it; bad
``--fail-if`` names and nonsense numbers exit 2 before any connection is made.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess

import pytest

from pipecat_wsclient.serve.server import ServeOptions, VoiceServer
from support.commands import CLI, cli
from support.servers import closing_server, echo_server

pytestmark = pytest.mark.slow  # the command line in subprocesses, against bots


async def test_a_bot_that_closes_1011_fails_the_call_once_naming_the_code():
    async with closing_server(1011, "boom", after=0.3) as server:
        code, out, err = await cli("call", server.uri, "--listen", "0", "--json")
        await asyncio.sleep(0.5)
    assert code == 7, err
    result = json.loads(out)
    assert "1011" in result["error"] and "boom" in result["error"]
    assert result["end"] == {"by": "bot", "code": 1011, "reason": "boom"}
    assert server.connections == 1  # no redial: a carrier never redials a media stream
    assert result["reconnects"] == 0


async def test_reconnect_is_there_when_asked():
    async with closing_server(1011, "boom", after=0.3) as server:
        code, _, _ = await cli("call", server.uri, "--reconnect", "--duration", "2", "--json")
    assert server.connections >= 2
    assert code in (7, 8)


async def test_load_counts_abnormal_closes_and_exits_1():
    async with closing_server(1011, "boom", after=0.2) as server:
        code, out, err = await cli(
            "load",
            server.uri,
            "--calls",
            "3",
            "--concurrency",
            "3",
            "--think",
            "0",
            "--json",
            timeout=90,
        )
    assert code == 1, err
    report = json.loads(out)
    assert report["failed"] == 3 and report["error_rate"] == 1.0
    assert report["errors"] == {"closed_1011": 3}
    assert server.connections == 3
    assert "calls failed" in err and "closed_1011" in err


async def test_load_max_error_rate_allows_failures():
    async with closing_server(1011, "boom", after=0.2) as server:
        code, _, err = await cli(
            "load",
            server.uri,
            "--calls",
            "2",
            "--think",
            "0",
            "--max-error-rate",
            "1",
            "--json",
            timeout=90,
        )
    assert code == 0, err


async def test_a_server_that_never_answers_is_a_silent_call_in_load():
    async with VoiceServer(ServeOptions(port=0, mode="record", record_path="/dev/null")) as srv:
        code, out, _ = await cli("load", srv.uri, "--calls", "1", "--think", "0", "--json")
    assert code == 1
    assert json.loads(out)["errors"] == {"silent": 1}


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-if", "p95_respnse_ms>100"],
        ["--fail-if", "nonsense"],
        ["--concurrency", "0"],
        ["--calls", "0"],
        ["--think", "-1"],
        ["--max-error-rate", "2"],
    ],
)
async def test_load_bad_inputs_exit_2_before_any_call(args):
    async with echo_server() as server:
        code, _, err = await cli("load", server.uri, *args, timeout=30)
        await asyncio.sleep(0.2)
    assert code == 2, err
    assert server.connections == 0


async def test_fail_if_error_lists_the_valid_names():
    code, _, err = await cli("load", "ws://127.0.0.1:9/ws", "--fail-if", "p95_respnse_ms>1")
    assert code == 2
    assert "p95_respnse_ms" in err and "p95_response_ms" in err and "error_rate" in err


@pytest.mark.parametrize(
    "args",
    [
        ["load", "ws://127.0.0.1:9/ws", "--concurrency", "0"],
        ["call"],
        ["call", "ws://127.0.0.1:9/ws", "--no-such-option"],
        ["call", "ws://127.0.0.1:9/ws", "--protocol", "nope"],
    ],
)
def test_usage_errors_are_one_line_whatever_the_width(args):
    out = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40"},
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["call", "{uri}", "--record", "/no/such/folder/call.wav"],
        ["call", "{uri}", "--plot", "/no/such/folder/call.png"],
        ["load", "{uri}", "--report", "/no/such/folder/load.png"],
    ],
)
async def test_unwritable_outputs_exit_2_before_any_call(args):
    async with echo_server() as server:
        code, _, err = await cli(*(a.format(uri=server.uri) for a in args), timeout=30)
        await asyncio.sleep(0.2)
    assert code == 2, err
    assert "does not exist" in err
    assert server.connections == 0


async def test_a_secret_header_given_wrong_is_not_echoed():
    code, _, err = await cli(
        "call", "ws://127.0.0.1:9/ws", "--header", "Bearer sk_live_abcdef123456"
    )
    assert code == 2
    assert "sk_live" not in err


@pytest.mark.parametrize("command", ["call", "load", "phone"])
async def test_a_uri_a_caller_cannot_dial_is_refused_before_anything(command):
    # http:// is a webhook only for a carrier that has one (not Exotel).
    extra = ["--no-browser"] if command == "phone" else []
    code, _, err = await cli(
        command, "http://127.0.0.1:9/ws?token=s3cret", "--protocol", "exotel", *extra, timeout=30
    )
    assert code == 2
    assert "not a WebSocket URI" in err and "exotel has no webhook" in err
    assert "s3cret" not in err


@pytest.mark.parametrize("where", ["busy", "no-such-host"])
def test_serve_on_a_busy_port_or_a_bad_address_is_one_line(where):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = (
            ["--port", str(busy.getsockname()[1])] if where == "busy" else ["--host", "999.1.1.1"]
        )
        out = subprocess.run([*CLI, "serve", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve on"), out.stderr


async def test_a_speech_to_text_model_that_cannot_load_fails_before_the_call(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("turns:\n  - say: hello\n    expect: {transcript_contains: [open]}\n")
    async with echo_server() as server:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "test", str(scenario), "--uri", server.uri, "--stt-model", "no-such-model",
            "--out-dir", str(tmp_path / "out"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "60"},
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        await asyncio.sleep(0.2)
    err = stderr.decode()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--stt-model" in lines[0] and "no-such-model" in lines[0]
    assert server.connections == 0


async def test_load_scenario_takes_the_stt_model_and_checks_it_first(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("turns:\n  - say: hello\n    expect: {transcript_contains: [open]}\n")
    async with echo_server() as server:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "load", server.uri, "--scenario", str(scenario), "--calls", "1",
            "--stt-model", "no-such-model",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        await asyncio.sleep(0.2)
    assert proc.returncode == 2, stderr.decode()
    assert "--stt-model" in stderr.decode()
    assert server.connections == 0


@pytest.mark.parametrize("command", ["test", "load"])
async def test_a_voice_that_cannot_be_made_fails_before_the_call(tmp_path, command):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: bad voice\nvoice: xx-nope\nturns:\n  - say: hello\n")
    async with echo_server() as server:
        args = (
            ["test", str(scenario), "--uri", server.uri, "--out-dir", str(tmp_path / "out")]
            if command == "test"
            else ["load", server.uri, "--scenario", str(scenario), "--calls", "1"]
        )
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "COLUMNS": "60"},
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        await asyncio.sleep(0.2)
    err = stderr.decode()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "'xx-nope'" in lines[0] and "voice" in lines[0], err
    assert server.connections == 0
