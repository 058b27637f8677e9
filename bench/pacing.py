"""Outbound pacing, ours and Pipecat's client side by side, on the same stream.

Each implementation streams ``--seconds`` of 16 kHz mono audio (one frame, as
a TTS would push it) to a local recording server; the server stamps each
message's arrival. Reported per implementation:

- ``effective_rate``: audio duration / wall time, over the steady part (after
  the chunks the lead lets go at once, up to the last chunk);
- ``end_drift_ms``: when the last chunk arrived, minus when the schedule says
  it should (``first arrival + audio before it - lead``); the lead itself is
  not drift;
- ``p99_gap_ms``: 99th percentile of the gaps between chunk arrivals;
- ``drift_naive_ms``: ``(t_last - t_first) - (audio seconds - one chunk)``, the
  same end drift with the lead counted in (the lead shows as negative drift).

Each implementation first streams one second as a warm-up (not measured);
repeats alternate the order; the JSON has the median, the spread
(max - min) and each run, and checks the goals at N=1: effective rate
1.00 +/- 0.5 %, end drift under 20 ms, p99 gap within 5 ms of the chunk.

Usage::

    .venv/bin/python bench/pacing.py --seconds 60 [--repeats 1] [--quick]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from benchlib import out_dir, parser, summarize, write_result
from loguru import logger
from pipecat.frames.frames import EndFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.websocket import client as pipecat_client
from pipecat.workers.runner import WorkerRunner
from websockets.asyncio.server import serve

import pipecat_wsclient

RATE = 16000
GOAL_RATE_TOLERANCE = 0.005
GOAL_DRIFT_MS = 20.0
GOAL_GAP_MS = 5.0


async def stream_once(impl: str, seconds: float) -> dict:
    arrivals: list[tuple[float, int]] = []
    serializer = ProtobufFrameSerializer()

    async def record(ws):
        async for message in ws:
            frame = await serializer.deserialize(message)
            if frame is not None and hasattr(frame, "audio"):
                arrivals.append((time.monotonic(), len(frame.audio)))

    module = pipecat_wsclient if impl == "ours" else pipecat_client
    async with serve(record, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        transport = module.WebsocketClientTransport(
            f"ws://127.0.0.1:{port}/ws",
            module.WebsocketClientParams(
                audio_out_enabled=True, add_wav_header=False, audio_out_end_silence_secs=0
            ),
        )
        worker = PipelineWorker(
            Pipeline([transport.output()]),
            params=PipelineParams(audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        audio = bytes(int(seconds * RATE) * 2)
        await worker.queue_frames([TTSAudioRawFrame(audio, RATE, 1)])

        async def end_when_done():
            while sum(n for _, n in arrivals) < len(audio):
                await asyncio.sleep(0.05)
            await worker.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        ender = asyncio.create_task(end_when_done())
        await asyncio.wait_for(runner.run(), seconds * 3 + 30)
        await ender
    lead = (
        pipecat_wsclient.WebsocketClientParams().audio_out_send_lead_secs if impl == "ours" else 0
    )
    return figures(arrivals, lead)


def figures(arrivals: list[tuple[float, int]], lead: float) -> dict:
    bps = 2 * RATE
    chunk = arrivals[0][1] / bps
    k0 = min(int(lead / chunk) + 1, len(arrivals) - 2)
    steady_audio = sum(n for _, n in arrivals[k0:-1]) / bps
    steady_rate = steady_audio / (arrivals[-1][0] - arrivals[k0][0])
    before_last = sum(n for _, n in arrivals[:-1]) / bps
    drift = (arrivals[-1][0] - arrivals[0][0]) - (before_last - lead)
    drift_naive = (arrivals[-1][0] - arrivals[0][0]) - (sum(n for _, n in arrivals) / bps - chunk)
    gaps = sorted(b[0] - a[0] for a, b in zip(arrivals[k0:], arrivals[k0 + 1 :], strict=False))
    return {
        "chunks": len(arrivals),
        "chunk_ms": round(chunk * 1000, 1),
        "effective_rate": round(steady_rate, 5),
        "end_drift_ms": round(drift * 1000, 2),
        "drift_naive_ms": round(drift_naive * 1000, 2),
        "p99_gap_ms": round(gaps[int(0.99 * (len(gaps) - 1))] * 1000, 2),
        "median_gap_ms": round(statistics.median(gaps) * 1000, 2),
    }


def goals(m: dict) -> dict:
    """The pacing goals at N=1, on the medians."""
    return {
        "effective_rate_1_00_pm_0_5pct": abs(m["effective_rate"] - 1) <= GOAL_RATE_TOLERANCE,
        "end_drift_under_20ms": abs(m["end_drift_ms"]) < GOAL_DRIFT_MS,
        "p99_gap_within_5ms_of_chunk": abs(m["p99_gap_ms"] - m["chunk_ms"]) <= GOAL_GAP_MS,
    }


async def main(seconds: float, repeats: int) -> dict:
    logger.remove()
    logger.add(lambda m: print(m, end=""), level="WARNING")
    for impl in ("ours", "pipecat"):  # warm-up, not measured
        await stream_once(impl, 1.0)
    results: dict[str, list[dict]] = {"ours": [], "pipecat": []}
    for rep in range(repeats):
        for impl in ("ours", "pipecat") if rep % 2 == 0 else ("pipecat", "ours"):
            results[impl].append(await stream_once(impl, seconds))
    summary = {
        impl: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for impl, runs in results.items()
    }
    spread = {
        impl: {k: summarize((r[k] for r in runs), 5) for k in runs[0] if k != "chunks"}
        for impl, runs in results.items()
    }
    report = {
        "seconds": seconds,
        "repeats": repeats,
        "config": {
            "sessions": 1,
            "params": "defaults (audio_out_10ms_chunks=4: 40 ms chunks), add_wav_header=False, "
            "audio_out_end_silence_secs=0",
            "server": "websockets, same process, stamps each message's arrival",
        },
        "median": summary,
        "spread": spread,
        "goals": {impl: goals(m) for impl, m in summary.items()},
        "runs": results,
    }
    print(json.dumps(summary, indent=2))
    return report


if __name__ == "__main__":
    p = parser("Outbound pacing: ours vs Pipecat's client.")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    report = asyncio.run(main(seconds, args.repeats))
    report["quick"] = args.quick
    write_result(out_dir(args), f"pacing-{int(seconds)}s", report)
