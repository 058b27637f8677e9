"""The phone's figures against a bot's own truth, and against ``call`` on the same bot (issue 23).

The browser speaks the bundled question (a fake microphone file); the plain
bot (no Pipecat: ``support/plain_bot.py``) reports when its voice detector
heard the utterance end and when it began its answer. The phone's turn, made
by the same turn engine as ``call``'s, must give the same response.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_phone_browser import chromium, microphone_file, page, running_phone, until

from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.call import CallOptions, bundled_clip, run_call
from pipecat_wsclient.phone import PhoneOptions
from support.browser import chromium_or_skip
from support.plain_bots import plain_bot

BOT = {"latency": 0.3, "silence_ms": 700, "answer_secs": 1.0}
"""The bot waits out the question's pauses (700 ms) and answers 0.3 s later."""


def _answered(bot, turns: list[dict]) -> list[tuple[float, float]]:
    """(ours, the bot's truth) for each answered turn, in ms."""
    truth = [r["response_ms"] for r in bot.reports(event="answer-started")]
    ours = [t["latency_ms"] for t in turns if t.get("latency_ms") is not None]
    return list(zip(ours[-len(truth) :] if truth else [], truth, strict=False))


def test_the_phone_reads_the_response_the_bot_reports_and_call_reads(tmp_path: Path) -> None:
    chromium_or_skip()
    mic = microphone_file(tmp_path)
    with plain_bot("answer", **BOT) as bot:
        with running_phone(PhoneOptions(bot.uri, protocol="twilio"), tmp_path) as phone:
            with chromium(mic) as driver:
                driver.get(phone.address(call=1))
                until("connected", lambda: page(driver, "window.phone.state") == "connected", 20)
                until(
                    "an answered turn",
                    lambda: any(t.get("latency_ms") for t in page(driver, "window.phone.turns")),
                    40,
                )
                time.sleep(0.5)
                turns = page(driver, "window.phone.turns")
                driver.find_element("id", "hangup").click()
                until("ended", lambda: page(driver, "window.phone.state") == "ended", 20)
        phone_pairs = _answered(bot, turns)
    clip = read_wav(bundled_clip(), 8000)
    with plain_bot("answer", **BOT) as bot:
        called = asyncio.run(
            run_call(CallOptions(bot.uri, protocol="twilio", audio=clip, listen=3.0))
        )
        call_pairs = _answered(bot, called.turns)
    print(f"phone (ours, truth) ms: {phone_pairs}; call: {call_pairs}")
    assert phone_pairs and call_pairs, (turns, called.turns)
    phone_err = phone_pairs[0][0] - phone_pairs[0][1]
    call_err = call_pairs[0][0] - call_pairs[0][1]
    assert abs(phone_err) < 80, phone_pairs
    assert abs(call_err) < 80, call_pairs
    assert abs(phone_err - call_err) < 60, (phone_pairs, call_pairs)


pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.slow,
    pytest.mark.browser,
]
