"""Client end of the stream benchmarks: N sessions of ONE implementation in this process.

Started by ``streams.py``, ``capacity.py``, ``inbound_latency.py`` and
``profile.py`` (one process per implementation and run, so that CPU and RSS
are clean). Each session is a pipeline ``transport.input() -> Sink ->
transport.output()`` in one :class:`WorkerRunner`:

- outbound: a feeder queues 100 ms ``TTSAudioRawFrame`` s (speech, looped),
  keeping 0.5 s ahead of real time, as a TTS does; ``transport.output()``
  cuts them into 20 ms chunks (``audio_out_10ms_chunks=2``) and paces them;
- inbound: the server streams 20 ms protobuf audio chunks in real time;
  ``Sink``, right after ``transport.input()``, counts them (and, with
  ``--stamp``, takes each one's latency from the send time in its first 8
  bytes), and consumes them.

Sessions are connected in batches; then the server is told to start
streaming, the feeders start, and after ``--warmup`` seconds the measuring
window starts: it prints ``{"event": "steady", "pid", "window"}``, measures
for ``--window`` seconds, prints ``{"event": "result", ...}`` and exits.

Usage (normally through the benchmarks)::

    .venv/bin/python bench/stream_client.py --impl ours --sessions 10 \\
        --uri-base ws://127.0.0.1:PORT --control ws://127.0.0.1:PORT/control
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import CHUNK_BYTES, CHUNK_SECS, RATE, percentile, pin, speech_pcm

FEED_FRAME_SECS = 0.1
FEED_AHEAD_SECS = 0.5
BATCH = 25
OK_RATE = 0.98


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class StackSampler:
    """A stand-in for py-spy when it is not installed: samples the main thread's stack.

    Writes py-spy's raw (collapsed) format. Samples whose innermost frame is the
    event loop's ``select`` are idle and left out, as py-spy does.
    """

    def __init__(self, path: Path, seconds: float, interval: float = 0.005):
        self.path = path
        self.seconds = seconds
        self.interval = interval
        self.main = threading.main_thread().ident
        self.stacks: Counter[str] = Counter()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(self.interval)
            frame = sys._current_frames().get(self.main)  # type: ignore[arg-type]
            names = []
            while frame is not None:
                code = frame.f_code
                names.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
                frame = frame.f_back
            if not names or names[0].startswith("select ("):
                continue
            self.stacks[";".join(reversed(names))] += 1
        self.path.write_text("".join(f"{s} {n}\n" for s, n in self.stacks.items()))


async def main(args: argparse.Namespace) -> None:
    pin(args.core)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    from pipecat.frames.frames import ErrorFrame, Frame, InputAudioRawFrame, TTSAudioRawFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.transports.websocket import client as pipecat_client
    from pipecat.workers.runner import WorkerRunner
    from websockets.asyncio.client import connect

    import pipecat_wsclient

    module: Any = pipecat_wsclient if args.impl == "ours" else pipecat_client
    loop = asyncio.get_running_loop()
    speech = speech_pcm()
    feed_bytes = int(FEED_FRAME_SECS * RATE) * 2
    speech = speech[: len(speech) // feed_bytes * feed_bytes]
    feed_chunks = [speech[i : i + feed_bytes] for i in range(0, len(speech), feed_bytes)]

    class Sink(FrameProcessor):
        """Count (and time) inbound audio right after ``transport.input()``; consume it."""

        def __init__(self) -> None:
            super().__init__()
            self.in_bytes = 0
            self.latencies: list[float] | None = None

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            now = time.monotonic()
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                self.in_bytes += len(frame.audio)
                if self.latencies is not None:
                    # Every chunk is stamped; received audio already waiting may
                    # come as one frame of several chunks (ours): each counts.
                    audio = frame.audio
                    for offset in range(0, len(audio) - 7, CHUNK_BYTES):
                        self.latencies.append(now - struct.unpack_from("<d", audio, offset)[0])
                return
            await self.push_frame(frame, direction)

    class Session:
        def __init__(self, k: int, prefix: str):
            self.id = f"{prefix}{k}"
            params = module.WebsocketClientParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                audio_out_10ms_chunks=2,
                audio_out_end_silence_secs=0,
            )
            self.transport = module.WebsocketClientTransport(f"{args.uri_base}/s/{self.id}", params)
            self.sink = Sink()
            self.worker = PipelineWorker(
                Pipeline([self.transport.input(), self.sink, self.transport.output()]),
                params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
                idle_timeout_secs=None,
                cancel_on_idle_timeout=False,
                enable_rtvi=False,
                name=f"session-{k}",
            )
            self.connected = False
            self.errors: list[str] = []

            @self.transport.event_handler("on_connected")
            async def _connected(_transport: Any, _ws: Any) -> None:
                self.connected = True

            @self.worker.event_handler("on_pipeline_error")
            async def _error(_worker: Any, frame: ErrorFrame) -> None:
                self.errors.append(frame.error)

        async def feed(self, phase: float) -> None:
            await asyncio.sleep(phase)
            start = loop.time()
            pushed = 0.0
            k = 0
            while True:
                target = loop.time() - start + FEED_AHEAD_SECS
                while pushed < target:
                    audio = feed_chunks[k % len(feed_chunks)]
                    await self.worker.queue_frame(TTSAudioRawFrame(audio, RATE, 1))
                    pushed += FEED_FRAME_SECS
                    k += 1
                await asyncio.sleep(FEED_FRAME_SECS)

    control = await connect(args.control, compression=None)

    async def request(cmd: dict[str, Any]) -> dict[str, Any]:
        await control.send(json.dumps(cmd))
        return json.loads(await control.recv())

    prefix = f"{args.impl}-{os.getpid()}-{uuid.uuid4().hex[:6]}/"
    n = args.sessions
    gc.collect()
    rss_before = rss_bytes()
    t_setup = time.monotonic()
    sessions = [Session(k, prefix) for k in range(n)]
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    run_task = asyncio.create_task(runner.run(auto_end=False))

    async def wait(predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or run_task.done():
                return False
            await asyncio.sleep(0.02)
        return True

    for i in range(0, n, BATCH):
        batch = sessions[i : i + BATCH]
        await runner.add_workers(*(s.worker for s in batch))
        await wait(lambda b=batch: all(s.connected or s.errors for s in b), 60)
        if args.verbose:
            print(f"{time.monotonic() - t_setup:.1f}s: {i + len(batch)} sessions", file=sys.stderr)
    connected = sum(s.connected for s in sessions)
    setup_secs = time.monotonic() - t_setup

    await request({"cmd": "go", "prefix": prefix, "stamp": args.stamp})
    if args.verbose:
        print(f"{time.monotonic() - t_setup:.1f}s: streaming", file=sys.stderr)
    feeders = [
        asyncio.create_task(s.feed(phase=(k % 20) * CHUNK_SECS / 20))
        for k, s in enumerate(sessions)
    ]
    await asyncio.sleep(args.warmup)

    # -- the measuring window ---------------------------------------------------
    if args.stamp:
        for s in sessions:
            s.sink.latencies = []
    snap0 = await request({"cmd": "snap", "prefix": prefix})
    in0 = [s.sink.in_bytes for s in sessions]
    cpu0 = cpu_seconds()
    t0 = time.monotonic()
    emit({"event": "steady", "pid": os.getpid(), "window": args.window})
    sampler = None
    if args.sample_profile:
        sampler = StackSampler(Path(args.sample_profile), max(0.5, args.window - 0.2)).start()
    rss_samples = []
    while time.monotonic() - t0 < args.window:
        await asyncio.sleep(min(1.0, max(0.0, args.window - (time.monotonic() - t0))))
        rss_samples.append(rss_bytes())
    t1 = time.monotonic()
    cpu1 = cpu_seconds()
    in1 = [s.sink.in_bytes for s in sessions]
    snap1 = await request({"cmd": "snap", "prefix": prefix})
    rss_steady = rss_samples[-1]
    if sampler is not None:
        sampler.join(5)

    # -- figures ------------------------------------------------------------------
    window = t1 - t0
    server_window = snap1["t"] - snap0["t"]
    bps = 2 * RATE
    out_rates, in_rates, skipped = [], [], 0
    for k, s in enumerate(sessions):
        r0 = snap0["sessions"].get(s.id, [0, 0, 0, 0, None])
        r1 = snap1["sessions"].get(s.id, [0, 0, 0, 0, None])
        out_rates.append((r1[0] - r0[0]) / bps / server_window)
        in_rates.append((in1[k] - in0[k]) / bps / window)
        skipped += r1[3] - r0[3]
    out_sorted, in_sorted = sorted(out_rates), sorted(in_rates)
    cpu = cpu1 - cpu0

    def rates(v: list[float]) -> dict[str, float]:
        return {
            "min": round(v[0], 4),
            "p5": round(percentile(v, 5), 4),
            "median": round(percentile(v, 50), 4),
            "max": round(v[-1], 4),
            "frac_ok": round(sum(x >= OK_RATE for x in v) / len(v), 4),
        }

    result: dict[str, Any] = {
        "event": "result",
        "impl": args.impl,
        "sessions": n,
        "connected": connected,
        "errors": sum(len(s.errors) for s in sessions),
        "first_error": next((s.errors[0] for s in sessions if s.errors), None),
        "setup_s": round(setup_secs, 2),
        "window_s": round(window, 3),
        "cpu_s": round(cpu, 3),
        "cpu_frac": round(cpu / window, 4),
        "cpu_per_stream": round(cpu / (window * n), 6),
        "cpu_per_audio_s": round(cpu / max(1e-9, (sum(out_rates) + sum(in_rates)) / 2 * window), 6),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_steady_mb": round(rss_steady / 2**20, 1),
        "rss_per_session_kb": round((rss_steady - rss_before) / n / 1024, 1),
        "out_rate": rates(out_sorted),
        "in_rate": rates(in_sorted),
        "sustained": out_sorted[0] >= OK_RATE and in_sorted[0] >= OK_RATE and connected == n,
        "server_cpu_frac": round((snap1["cpu"] - snap0["cpu"]) / server_window, 4),
        "server_skipped_chunks": skipped,
    }
    if args.stamp:
        lat = sorted(x for s in sessions for x in (s.sink.latencies or []))
        result["latency_ms"] = {
            "count": len(lat),
            "p50": round(percentile(lat, 50) * 1000, 3),
            "p90": round(percentile(lat, 90) * 1000, 3),
            "p99": round(percentile(lat, 99) * 1000, 3),
            "max": round(lat[-1] * 1000, 3) if lat else None,
            "min": round(lat[0] * 1000, 3) if lat else None,
        }
        if n == 1:  # few enough to pool over runs
            result["latency_samples_ms"] = [round(x * 1000, 4) for x in lat]
    emit(result)
    for f in feeders:
        f.cancel()
    # Tearing N pipelines down cleanly takes long and is not measured: leave.
    os._exit(0)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Stream benchmark client (see the module doc).")
    p.add_argument("--impl", choices=("ours", "pipecat", "pipecat_nodeflate"), required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--uri-base", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--stamp", action="store_true", help="measure inbound latency")
    p.add_argument("--sample-profile", default=None, help="write stack samples here (no py-spy)")
    p.add_argument("--verbose", action="store_true", help="progress on stderr")
    asyncio.run(main(p.parse_args()))
