"""Reconnection figures with the default params (the numbers the README quotes).

- reconnect time after a server restart (graceful 1012, back at once);
- audio lost for outages of 0.5 s and 5 s with the default 2 s buffer;
- time to notice a stalled peer (proxy stops forwarding) by keepalive.

Usage::

    .venv/bin/python bench/faults.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import TTSAudioRawFrame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "core"))  # the test modules it borrows from

from test_reconnect import Events, received_audio, right_after_a_message  # noqa: E402

from harness import RATE, make_transport, pcm, run_pipeline, wait_for  # noqa: E402
from support.fault_proxy import FaultProxy  # noqa: E402
from support.restartable import RestartableServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def restart() -> dict:
    async with RestartableServer() as server:
        t = make_transport(server.uri)
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await server.stop(graceful=True)
            await server.start()
            await wait_for(lambda: events.reconnected, 10)
            await p.end()
    return {
        "reconnected_after_server_back_ms": round(
            (events.reconnected[0][0] - server.started_at) * 1000, 1
        ),
        "downtime_ms": round(events.reconnected[0][2] * 1000, 1),
    }


async def outage(seconds: float) -> dict:
    clip_secs = float(int(seconds) + 5)  # whole 40 ms chunks
    clip = pcm(clip_secs, seed=5)
    async with RestartableServer() as server:
        t = make_transport(server.uri)
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(1.0)
            await right_after_a_message(server)
            await server.stop()
            await asyncio.sleep(seconds)
            await server.start()
            await wait_for(lambda: events.reconnected, 10)
            await wait_for(
                lambda: t.stats.audio_secs_sent + t.stats.dropped_audio_secs >= clip_secs - 1e-6,
                clip_secs + 10,
            )
            stats = t.stats
            await p.end()
        received = await received_audio(server)
    lost = (len(clip) - len(received)) / (2 * RATE)
    return {
        "outage_s": seconds,
        "downtime_s": round(events.reconnected[0][2], 3),
        "audio_lost_s": round(lost, 3),
        "reported_dropped_s": round(stats.dropped_audio_secs, 3),
    }


async def stall() -> dict:
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        t = make_transport(proxy.uri())
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await asyncio.sleep(1.0)
            stalled_at = time.monotonic()
            proxy.stall()
            await wait_for(lambda: events.reconnecting, 20)
            await p.worker.cancel()
    return {"stall_noticed_after_s": round(events.reconnecting[0][0] - stalled_at, 2)}


async def main(quick: bool) -> dict:
    logger.remove()
    logger.add(lambda m: print(m, end=""), level="ERROR")
    report: dict = {"restart": await restart()}
    report["outages"] = [await outage(0.5)] + ([] if quick else [await outage(5.0)])
    if not quick:
        report["stall"] = await stall()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, no results file")
    args = parser.parse_args()
    result = asyncio.run(main(args.quick))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "faults.json").write_text(json.dumps(result, indent=2) + "\n")
