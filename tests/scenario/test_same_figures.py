"""``test`` and ``call`` tell the same truth about one bot (issue 23, item 4).

The bot is tests/support/plain_bot.py (a Twilio Media Streams bot with no
Pipecat in it) reporting its own truth on the stream's media timeline. The
same audio is played by ``call`` (one clip) and by a scenario (``play``
turns, a ``barge_in``); both commands' figures come from the one turn engine,
so each is within 100 ms of the bot's truth and their errors against it agree
within 60 ms (bounds that do not flake on a loaded 2-core machine; the
acceptance bounds are 40 and 30 ms).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.caller.call import CallOptions, run_call
from pipecat_wsclient.scenario.model import load_scenario
from pipecat_wsclient.scenario.run import RunOptions, run_scenario
from support.plain_bot import tone
from support.plain_bots import plain_bot

pytestmark = pytest.mark.slow  # bots and the command line in subprocesses

RATE = 8000
BOT = {"latency": 0.2, "silence_ms": 400}


def _wav(path: Path, pcm: bytes) -> Path:
    write_wav(path, pcm, RATE)
    return path


def _scenario(tmp_path: Path, turns: str) -> Path:
    path = tmp_path / "same.yaml"
    path.write_text(f"name: same truth\nprotocol: twilio\nsample_rate: {RATE}\nturns:\n{turns}")
    return path


async def test_response_in_test_and_call_agree_and_match_the_bots_truth(tmp_path):
    question = tone(1.0, 300.0)
    with plain_bot("answer", answer_secs=1.0, **BOT) as bot:
        called = await run_call(CallOptions(bot.uri, protocol="twilio", audio=question, listen=2.0))
        call_truth = [r["response_ms"] for r in bot.reports(event="answer-started")]
    _wav(tmp_path / "q.wav", question)
    path = _scenario(tmp_path, "  - play: q.wav\n  - play: q.wav\n")
    with plain_bot("answer", answer_secs=1.0, **BOT) as bot:
        tested = await run_scenario(load_scenario(path), RunOptions(uri=bot.uri))
        test_truth = [r["response_ms"] for r in bot.reports(event="answer-started")]
    assert called.exit_code == 0, called.error
    assert tested.exit_code == 0, (tested.error, [t.notes for t in tested.turns])
    call_ms = [t["latency_ms"] for t in called.turns]
    test_ms = [t.response_ms for t in tested.turns]
    assert len(call_ms) == len(call_truth) == 1, (call_ms, call_truth)
    assert len(test_ms) == len(test_truth) == 2, (test_ms, test_truth)
    call_err = call_ms[0] - call_truth[0]
    for ours, truth in zip(test_ms, test_truth, strict=True):
        assert ours is not None
        assert abs(ours - truth) < 100, (test_ms, test_truth)
        assert abs(call_err - (ours - truth)) < 60, (call_ms, call_truth, test_ms, test_truth)
    assert abs(call_err) < 100, (call_ms, call_truth)


async def test_barge_in_in_test_and_call_agree_and_match_the_bots_truth(tmp_path):
    question, interruption = tone(1.0, 300.0), tone(1.0, 350.0)
    flags = {**BOT, "answer_secs": 3.0, "stop_ms": 150}
    # call: the interruption starts about 1 s into the answer (0.4 + 0.2 s after the question).
    clip = question + bytes(2 * round(1.6 * RATE)) + interruption
    with plain_bot("barge", **flags) as bot:
        called = await run_call(CallOptions(bot.uri, protocol="twilio", audio=clip, listen=1.5))
        call_truth = [r["barge_ms"] for r in bot.reports(event="answer-stopped")]
    _wav(tmp_path / "q.wav", question)
    _wav(tmp_path / "i.wav", interruption)
    turns = "  - play: q.wav\n  - barge_in: {after_ms: 1000, play: i.wav}\n"
    with plain_bot("barge", **flags) as bot:
        tested = await run_scenario(
            load_scenario(_scenario(tmp_path, turns)), RunOptions(uri=bot.uri)
        )
        test_truth = [r["barge_ms"] for r in bot.reports(event="answer-stopped")]
    assert called.exit_code == 0, called.error
    assert tested.exit_code == 0, (tested.error, [t.notes for t in tested.turns])
    assert len(call_truth) == len(called.barge_ins) == 1, (call_truth, called.barge_ins)
    assert len(test_truth) == 1, test_truth
    barge = tested.turns[1]
    assert barge.barge_in_ms is not None and barge.clear_ms is not None, barge
    call_err = called.barge_ins[0]["barge_in_ms"] - call_truth[0]
    test_err = barge.barge_in_ms - test_truth[0]
    assert abs(call_err) < 100 and abs(test_err) < 100, (called.barge_ins, call_truth, barge)
    assert abs(call_err - test_err) < 60, (call_err, test_err)


async def test_an_echo_is_an_overlap_in_test_as_in_call(tmp_path):
    # The echo bot sends our audio back 0.3 s later: it begins "answering"
    # before we have finished; no fresh answer follows.
    question = tone(1.0, 300.0)
    with plain_bot("echo", delay=0.3) as bot:
        called = await run_call(CallOptions(bot.uri, protocol="twilio", audio=question, listen=1.5))
    _wav(tmp_path / "q.wav", question)
    path = _scenario(tmp_path, "  - play: q.wav\n")
    with plain_bot("echo", delay=0.3) as bot:
        tested = await run_scenario(load_scenario(path), RunOptions(uri=bot.uri))
    assert called.turns[0]["latency_ms"] is None, called.turns
    overlap = called.turns[0]["overlap_ms"]
    assert overlap is not None and 550 < overlap < 850, called.turns
    turn = tested.turns[0]
    assert turn.response_ms is not None and -850 < turn.response_ms < -550, turn
    assert abs(-turn.response_ms - overlap) < 60, (turn.response_ms, overlap)
    assert any("before our speech ended" in n for n in turn.notes), turn.notes


async def test_test_reports_the_greeting_and_never_as_turn_1s_answer(tmp_path):
    # The bot greets for 1.2 s on connect and we speak at once, over it: the
    # greeting still playing when our question ends is no answer (the old
    # rule read it as a 0 ms response); the answer comes 0.4 + 0.5 s after
    # our question, once the greeting is over.
    question = tone(1.0, 300.0)
    _wav(tmp_path / "q.wav", question)
    turns = "  - play: q.wav\n  - play: q.wav\n"
    flags = {**BOT, "latency": 0.5}
    with plain_bot("greet,answer", greet_secs=1.2, answer_secs=1.0, **flags) as bot:
        tested = await run_scenario(
            load_scenario(_scenario(tmp_path, turns)), RunOptions(uri=bot.uri, transcripts=False)
        )
        truth = [r["response_ms"] for r in bot.reports(event="answer-started")]
    greeting = tested.greeting
    assert greeting is not None, tested.turns
    assert greeting.response_ms is not None and 0 <= greeting.response_ms < 500, greeting
    assert greeting.answer_secs is not None and 1.0 < greeting.answer_secs < 1.4, greeting
    assert tested.as_dict()["greeting"]["secs"] == greeting.answer_secs
    first = tested.turns[0]
    assert first.speech_end_s < greeting.answer_end_s  # type: ignore[operator]
    measured = [t.response_ms for t in tested.turns]
    assert len(truth) == 2 and None not in measured, (measured, truth)
    for ours, theirs in zip(measured, truth, strict=True):
        assert abs(ours - theirs) < 100, (measured, truth)  # type: ignore[operator]
