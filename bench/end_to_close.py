"""Time from queueing EndFrame to the server seeing the close, ours and Pipecat's client.

Each run: a pipeline ``transport.input() -> transport.output()``
(``audio_out_end_silence_secs=0``, nothing queued) connects to a websockets
server in the same process (one clock); once connected and idle for a moment,
``EndFrame`` is queued; measured:

- ``close_seen_ms``: until the server's handler sees the connection closed
  (close frame received, handshake done);
- ``pipeline_done_ms``: until the worker runner returns;
- the close code the server received.

Runs alternate between the implementations (``--repeats`` each, after one
warm-up run each that is not counted).

Usage::

    .venv/bin/python bench/end_to_close.py [--repeats 20] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchlib import IMPL_NOTES, out_dir, parser, ratio, summarize, write_result


async def one(impl: str) -> dict[str, Any]:
    from pipecat.frames.frames import EndFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.transports.websocket import client as pipecat_client
    from pipecat.workers.runner import WorkerRunner
    from websockets.asyncio.server import ServerConnection, serve

    import pipecat_wsclient

    module: Any = pipecat_wsclient if impl == "ours" else pipecat_client
    closed: asyncio.Future[tuple[float, int | None]] = asyncio.get_running_loop().create_future()
    connected = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        connected.set()
        try:
            async for _ in ws:
                pass
        except Exception:
            pass
        code = ws.close_code
        if not closed.done():
            closed.set_result((time.monotonic(), code))

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        transport = module.WebsocketClientTransport(
            f"ws://127.0.0.1:{port}/ws",
            module.WebsocketClientParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                audio_out_end_silence_secs=0,
            ),
        )
        worker = PipelineWorker(
            Pipeline([transport.input(), transport.output()]),
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run = asyncio.create_task(runner.run())
        await asyncio.wait_for(connected.wait(), 10)
        await asyncio.sleep(0.3)  # started and idle
        t0 = time.monotonic()
        await worker.queue_frame(EndFrame())
        seen_at, code = await asyncio.wait_for(closed, 10)
        await asyncio.wait_for(run, 10)
        done_at = time.monotonic()
    return {
        "close_seen_ms": round((seen_at - t0) * 1000, 3),
        "pipeline_done_ms": round((done_at - t0) * 1000, 3),
        "close_code": code,
    }


async def run_all(repeats: int) -> dict[str, list[dict[str, Any]]]:
    from loguru import logger

    logger.remove()
    logger.add(lambda m: print(m, end=""), level="ERROR")
    impls = ["ours", "pipecat"]
    for impl in impls:  # warm-up
        await one(impl)
    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    for rep in range(repeats):
        for impl in impls if rep % 2 == 0 else impls[::-1]:
            runs[impl].append(await one(impl))
    return runs


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args()
    repeats = args.repeats or (3 if args.quick else 20)
    started = time.monotonic()
    runs = asyncio.run(run_all(repeats))
    summary: dict[str, Any] = {}
    for impl, rs in runs.items():
        summary[impl] = {
            "close_seen_ms": summarize((r["close_seen_ms"] for r in rs), 3),
            "pipeline_done_ms": summarize((r["pipeline_done_ms"] for r in rs), 3),
            "close_codes": sorted({r["close_code"] for r in rs}, key=str),
        }
        print(f"{impl:8s} {summary[impl]['close_seen_ms']}")
    summary["ratio_ours_over_pipecat"] = ratio(
        summary["ours"]["close_seen_ms"]["median"], summary["pipecat"]["close_seen_ms"]["median"]
    )
    report = {
        "quick": args.quick,
        "config": {
            "repeats": repeats,
            "audio_out_end_silence_secs": 0,
            "server": "websockets, same process (shared clock)",
            "impls": {i: IMPL_NOTES[i] for i in runs},
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": summary,
        "runs": runs,
    }
    write_result(out_dir(args), "end_to_close", report)


if __name__ == "__main__":
    main()
