"""Mouth to bot: the latency the browser phone adds, page capture to the bot's input.

Headless Chromium (fake microphone: a second of silence, then the bundled
question) opens the phone page with ``?call=1``; the page dials the test
phone bot (``tests/support/phone_bot.py``, Pipecat's FastAPI transport and
Twilio serializer) through our server, as Twilio. The question's voice onset
is timed four times with the same rule (a 20 ms chunk above -40 dBFS after
0.5 s below), each on the machine's wall clock:

- ``page``: the page's capture (when its AudioWorklet handed the chunk over,
  less the chunk's 20 ms);
- ``server``: the chunk's arrival at our local server;
- ``sent``: our transport writing it to the bot's WebSocket;
- ``bot``: the bot's pipeline receiving it (after Pipecat's serializer and
  its 8 -> 16 kHz resampler).

What the page adds is ``page -> sent``; ``sent -> bot`` is the bot's own
side. The baseline, run alternately in the same run: the same calls from a
"page" written in Python, which sends the same chunks straight from memory
in real time (its capture time is the chunk's send time less 20 ms, as the
browser's is). Needs Chromium and chromium-driver
(``apt-get install chromium chromium-driver``).

Usage::

    .venv/bin/python bench/phone_latency.py [--calls 10] [--protocol twilio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "phone"))  # the test modules it borrows from

from test_phone_browser import (  # noqa: E402
    chromium,
    microphone_file,
    mouth_to_bot,
    page,
    running_phone,
    until,
)
from test_phone_server import bot_conn, last_conn  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from pipecat_wsclient.audio.activity import VoiceOnsets  # noqa: E402
from pipecat_wsclient.audio.wav import read_wav  # noqa: E402
from pipecat_wsclient.phone import PhoneOptions  # noqa: E402
from support.processes import PhoneBot, phone_bot  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LEGS = ("page_to_server", "server_to_wire", "wire_to_bot", "total")


def one_call(bot: PhoneBot, protocol: str, folder: Path) -> dict[str, float]:
    mic = microphone_file(folder)
    before = last_conn(bot)
    # Echo mode: the bot says nothing of its own, so nothing but the question is heard.
    with running_phone(
        PhoneOptions(f"{bot.uri}?record={folder / 'bot.wav'}", protocol), folder
    ) as phone:
        with chromium(mic) as driver:
            driver.get(phone.address(call=1))
            until("connected", lambda: page(driver, "window.phone.state") == "connected", 20)
            conn = bot_conn(bot, before)
            until("the bot hearing the question", lambda: bot.reports(conn, "voice-heard"), 20)
            time.sleep(0.5)
            driver.find_element("id", "hangup").click()
            until("the summary", lambda: page(driver, "window.phone.summary"), 20)
            summary = page(driver, "window.phone.summary")
    heard = [r["wall"] for r in bot.reports(conn, "voice-heard")]
    return mouth_to_bot(summary, heard)


def one_python_call(bot: PhoneBot, protocol: str, folder: Path) -> dict[str, float]:
    """The baseline: the same call, the page's part played by Python."""
    pcm = read_wav(microphone_file(folder), 8000)
    before = last_conn(bot)
    options = PhoneOptions(f"{bot.uri}?record={folder / 'bot.wav'}", protocol)
    with running_phone(options, folder) as phone:

        async def call() -> dict:
            async with connect(phone.address("/call").replace("http://", "ws://")) as ws:
                messages: list[dict] = []

                async def read() -> None:
                    async for message in ws:
                        if isinstance(message, str):
                            messages.append(json.loads(message))

                reader = asyncio.create_task(read())
                while not any(m.get("state") == "connected" for m in messages):
                    await asyncio.sleep(0.005)
                start, onsets = time.monotonic(), VoiceOnsets(8000)
                for n, i in enumerate(range(0, len(pcm), 320)):
                    await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
                    chunk = pcm[i : i + 320]
                    await ws.send(chunk)
                    if onsets.feed(chunk):
                        at_ms = time.time() * 1e3 - 20  # captured over the last 20 ms
                        await ws.send(json.dumps({"type": "voice", "at_ms": at_ms}))
                    heard = bot.reports(event="voice-heard")
                    if any(r["conn"] > before for r in heard) and n % 25 == 0:
                        break
                await ws.send(json.dumps({"type": "hangup"}))
                await asyncio.wait_for(reader, 20)
                return next(m for m in messages if m["type"] == "ended")["summary"]

        summary = asyncio.run(call())
    conn = bot_conn(bot, before)
    return mouth_to_bot(summary, [r["wall"] for r in bot.reports(conn, "voice-heard")])


def spread(calls: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        leg: {
            "median": round(statistics.median(c[leg] for c in calls), 1),
            "min": round(min(c[leg] for c in calls), 1),
            "max": round(max(c[leg] for c in calls), 1),
        }
        for leg in LEGS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--protocol", default="twilio")
    args = parser.parse_args()
    logger.remove()
    calls, baseline = [], []
    with phone_bot() as bot, tempfile.TemporaryDirectory() as tmp:
        for n in range(args.calls):
            for kind, run, into in (
                ("browser", one_call, calls),
                ("python", one_python_call, baseline),
            ):
                folder = Path(tmp) / f"{kind}-{n}"
                folder.mkdir()
                legs = run(bot, args.protocol, folder)
                print(f"call {n + 1} ({kind}): {legs}", flush=True)
                into.append(legs)
    summary = spread(calls)

    def adds(runs: list[dict[str, float]]) -> dict[str, float]:
        added = [c["page_to_server"] + c["server_to_wire"] for c in runs]
        return {"median": round(statistics.median(added), 1), "max": round(max(added), 1)}

    result = {
        "protocol": args.protocol,
        "calls": calls,
        "legs_ms": summary,
        "baseline_calls": baseline,
        "baseline_legs_ms": spread(baseline),
        # Capture to our transport's send: what the page (and our server) add.
        "page_adds_ms": adds(calls),
        "baseline_adds_ms": adds(baseline),
        "note": "page_to_server includes the page's 20 ms chunk; wire_to_bot is the bot's own "
        "side (Pipecat's serializer and its 8 -> 16 kHz stream resampler, which releases audio "
        "in bursts: 15-130 ms by where the onset falls); each onset is found in 20 ms chunks.",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "phone_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    shown = ("legs_ms", "baseline_legs_ms", "page_adds_ms", "baseline_adds_ms")
    print(json.dumps({key: result[key] for key in shown}, indent=2))


if __name__ == "__main__":
    main()
