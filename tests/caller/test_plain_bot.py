"""``call`` against a media-stream bot with no Pipecat in it (tests/support/plain_bot.py).

The bot reports its own truth (when it heard our utterance end, when it began
its answer, on the stream's media timeline); the invariants: a crash or a drop
fails the call on one connection, naming the close; a normal hang-up by the
bot after its answer is a completed call ended by the bot; a greeting is never
turn 1's answer, and ``wait_greeting`` lets it finish before we speak;
response latency is within 100 ms of the bot's truth (the acceptance bound is
tighter; this one does not flake on a loaded 2-core machine).
"""

from __future__ import annotations

import pytest

from pipecat_wsclient.caller.call import CallOptions, run_call
from support.plain_bot import tone
from support.plain_bots import plain_bot

pytestmark = pytest.mark.slow  # bots in subprocesses


async def call(uri: str, **kwargs):
    return await run_call(CallOptions(uri, protocol="twilio", **kwargs))


@pytest.mark.parametrize(
    ("flags", "code", "by"), [({}, 1011, "bot"), ({"drop": True}, 1006, "network")]
)
async def test_a_crashing_bot_fails_the_call_on_one_connection(flags, code, by):
    with plain_bot("crash", **flags) as bot:
        result = await call(bot.uri, listen=0.5)
        starts = bot.reports(event="start")
    assert result.exit_code == 7
    assert str(code) in (result.error or "")
    assert result.end["by"] == by and result.end["code"] == code
    assert len(starts) == 1  # no redial


async def test_a_bot_that_hangs_up_after_answering_ends_a_completed_call():
    with plain_bot("hangup", latency=0.2) as bot:
        result = await call(bot.uri, listen=3.0)
    assert result.exit_code == 0, result.error
    assert result.end == {"by": "bot", "code": 1000, "reason": result.end["reason"]}
    assert result.turns and result.turns[0]["latency_ms"] is not None


async def test_response_latency_matches_the_bots_truth():
    with plain_bot("answer", latency=0.2, silence_ms=400) as bot:
        result = await call(bot.uri, listen=2.0)
        truth = [r["response_ms"] for r in bot.reports(event="answer-started")]
    measured = [t["latency_ms"] for t in result.turns]
    assert len(truth) == 2 and len(measured) == 2, (truth, measured)
    for ours, theirs in zip(measured, truth, strict=True):
        assert abs(ours - theirs) < 100, (measured, truth)


async def test_a_greeting_is_not_turn_1s_answer_and_can_be_waited_for():
    with plain_bot("greet,answer", greet_secs=1.5, latency=0.2) as bot:
        result = await call(bot.uri, listen=2.0, wait_greeting=True)
        greeted = bot.reports(event="greeting-finished")
        heard = bot.reports(event="utterance")
    assert result.greeting is not None
    assert greeted and heard
    # We spoke only after the greeting had finished at the bot.
    assert heard[0]["start_ms"] >= greeted[0]["media_ms"]
    assert result.turns[0]["latency_ms"] is not None
    assert result.turns[0]["answer_start_s"] > result.greeting["end_s"]


# -- barge-ins: the bot's stop against its own truth -----------------------------

RATE = 8000


def speech(secs: float, freq: float = 300.0) -> bytes:
    """A loud steady "voice" at 8 kHz (-15 dBFS RMS), 16-bit PCM."""
    return tone(secs, freq)


def question_then_interruption(gap: float) -> bytes:
    """1 s of speech, ``gap`` s of silence, 1 s of speech (to talk over the answer)."""
    return speech(1.0) + bytes(2 * round(gap * RATE)) + speech(1.0, 350.0)


async def test_barge_in_matches_the_bots_truth_when_it_stops_and_clears():
    # The bot answers 0.4 + 0.2 s after our question ends, for 3 s; our second
    # utterance starts about 1 s into its answer; it stops 150 ms after its VAD
    # (100 ms of speech) heard us, then clears.
    with plain_bot("barge", latency=0.2, silence_ms=400, answer_secs=3.0, stop_ms=150) as bot:
        result = await call(bot.uri, audio=question_then_interruption(1.6), listen=1.5)
        stopped = bot.reports(event="answer-stopped")
    assert result.exit_code == 0, result.error
    assert len(stopped) == 1 and len(result.barge_ins) == 1, (stopped, result.barge_ins)
    truth = stopped[0]["barge_ms"]  # from its hearing our onset to its stop
    measured = result.barge_ins[0]
    assert abs(measured["barge_in_ms"] - truth) < 100, (measured, truth)
    assert measured["clear_ms"] is not None


async def test_a_bot_that_talks_on_with_pauses_between_words_has_not_stopped():
    # The phantom barge-in: the bot ignores us and finishes its answer, 300 ms
    # words 150 ms apart, then hangs up. It stopped when its answer finished,
    # not at the first pause after our onset (it goes on into its next answer
    # until it hangs up: its audio stopped then).
    flags = {"latency": 0.2, "silence_ms": 400, "answer_secs": 3.0, "pause_ms": 150}
    with plain_bot("hangup", **flags) as bot:
        result = await call(bot.uri, audio=question_then_interruption(1.6), listen=4.0)
        hangup = bot.reports(event="hangup")
        heard = bot.reports(event="speech-started")
    assert result.exit_code == 0, result.error
    assert result.end["by"] == "bot"
    assert len(result.barge_ins) == 1, result.barge_ins
    # From our onset as the bot heard it (speech-started comes with the 5th
    # loud frame, 80 ms later) to its hang-up (its last frame went just before).
    truth = (hangup[0]["time"] - (heard[1]["time"] - 0.08)) * 1000
    assert abs(result.barge_ins[0]["barge_in_ms"] - truth) < 100, (result.barge_ins, truth)
    assert result.barge_ins[0]["barge_in_ms"] > 1000  # not the first pause after our onset
