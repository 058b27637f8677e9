"""Soak: one call for 30 minutes through server restarts and interruptions (issue 13).

One real Pipecat pipeline with our transport calls a WebSocket server that
this process runs on 127.0.0.1 (a free port, kept across restarts). For the
whole run the bot speaks like a TTS does (utterances of 1-4 s, 16 kHz mono,
each second of audio handed over at once in 40 ms ``TTSAudioRawFrame``s on an
absolute real-time schedule, then a pause); every ``--interrupt-every``
seconds it is barged in on (``InterruptionFrame``; the current utterance is
abandoned, as a bot does); every ``--restart-every`` seconds the server goes
away, alternately with a graceful close (1012) and an abrupt TCP abort, stays
down for a seeded random 0.2-1.5 s and comes back on the same port. The
server counts the audio it receives (and echoes audio back, so the inbound
path is soaked too), keeping counters only.

Every few seconds it samples the process's RSS, asyncio task count, open file
descriptors, live Python objects and the transport's stats. At the end it
reports least-squares slopes (per minute, after a warm-up of the first minute,
or the first 10 % of a shorter run) and the audio accounting:

- the client's books: produced == sent + dropped + interrupted, within one chunk;
- the wire: what the client counted as sent but the server never read, measured
  per restart (both ends are frozen while the server is down, so the figure is
  exact): zero at graceful restarts and at the end; at aborts it is the one
  loss the README says the client cannot see (bytes already handed to the
  kernel), reported separately as ``lost_in_tcp_at_aborts_s``;
- unaccounted = produced - received - dropped - interrupted - lost at aborts,
  within one chunk.

Verdicts: *flat* (every slope under the thresholds below; not judged when
less than ``MIN_MINUTES_TO_JUDGE_FLAT`` minutes are left after warm-up),
*nothing uncounted* (both books close within a chunk), *survived* (every
restart reconnected, no error, the pipeline ended by the EndFrame). Exits 1
when one fails.

Usage::

    .venv/bin/python bench/soak.py                      # 30 minutes, bench/results/soak.json
    .venv/bin/python bench/soak.py --minutes 5 --restart-every 20 --out /tmp/soak
    .venv/bin/python bench/soak.py --quick              # 30 s (the smoke test's run)
    .venv/bin/python bench/soak.py --tracemalloc ...    # also: what grew, by source line
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import random
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from benchlib import machine, out_dir, parser
from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.workers.runner import WorkerRunner
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport
from pipecat_wsclient.params import ReconnectParams

RATE = 16000
BYTES_PER_SEC = RATE * 2  # 16-bit mono
CHUNK_SECS = 0.04  # the transport's default chunk (4 x 10 ms); the feed uses the same
CHUNK_BYTES = int(RATE * CHUNK_SECS) * 2
BLOCK_CHUNKS = 25  # a TTS hands over ~1 s of audio at once
UTTERANCE_SECS = (1.0, 4.0)
PAUSE_SECS = (0.3, 1.5)
OUTAGE_SECS = (0.2, 1.5)
INTERRUPT_JITTER = 0.2  # each interruption within +/- 20 % of its slot

# Noise thresholds of the "flat" verdict, per minute of the run after warm-up.
# A single 1 MB step of RSS in the middle of a 29-minute window is a slope of
# about 52 kB/min (1.5 x step / window): the RSS bound tolerates that kind of
# allocator step, not a steady leak (100 kB/min is 2.9 MB over 29 minutes).
RSS_SLOPE_MAX_KB_PER_MIN = 100.0
TASK_SLOPE_MAX_PER_MIN = 0.1
FD_SLOPE_MAX_PER_MIN = 0.1
MIN_MINUTES_TO_JUDGE_FLAT = 5.0
WARMUP_MAX_SECS = 60.0
WARMUP_FRACTION = 0.1
# Accounting tolerance: one chunk (and float rounding).
ACCOUNTING_TOLERANCE_SECS = CHUNK_SECS + 1e-6


def code_version() -> dict[str, Any]:
    """Which ``pipecat_wsclient`` ran: its folder, and its git commit and local changes."""
    import pipecat_wsclient

    folder = Path(pipecat_wsclient.__file__).resolve().parent
    info: dict[str, Any] = {"module": str(folder), "commit": None, "modified": None}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = git("rev-parse", "HEAD")
        info["modified"] = git("status", "--porcelain", "--", ".").splitlines()
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secs(num_bytes: int) -> float:
    return num_bytes / BYTES_PER_SEC


def amount(value: float, digits: int = 6) -> float:
    """``value`` rounded, without a negative zero."""
    return round(value, digits) + 0.0


async def sleep_until(when: float) -> None:
    await asyncio.sleep(max(0.0, when - time.monotonic()))


class CountingServer:
    """A WebSocket server on a fixed port that can be restarted; keeps counters only.

    Decodes each message with Pipecat's protobuf serializer (the transport's
    default), counts audio bytes and interruptions, and echoes audio back.

    Attributes:
        audio_bytes: PCM bytes of audio received, across restarts.
        echoed_bytes: PCM bytes echoed back (handed to websockets).
        interruptions: Interruption messages received.
        other: Other messages received.
        connections: Connections accepted.
        live: Connections open now (their handler still counting).
        close_codes: Close code of each finished connection, counted.
    """

    def __init__(self, echo: bool = True) -> None:
        self.port = free_port()
        self.echo = echo
        self.audio_bytes = 0
        self.echoed_bytes = 0
        self.interruptions = 0
        self.other = 0
        self.connections = 0
        self.live = 0
        self.close_codes: collections.Counter[str] = collections.Counter()
        self._serializer = ProtobufFrameSerializer()
        self._server: Server | None = None

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.live += 1
        try:
            async for message in ws:
                frame = None
                if isinstance(message, bytes):
                    frame = await self._serializer.deserialize(message)
                if isinstance(frame, InputAudioRawFrame):
                    self.audio_bytes += len(frame.audio)
                    if self.echo:
                        await ws.send(message)
                        self.echoed_bytes += len(frame.audio)
                elif isinstance(frame, InterruptionFrame):
                    self.interruptions += 1
                else:
                    self.other += 1
        except ConnectionClosed:
            pass
        finally:
            self.live -= 1
            self.close_codes[str(ws.close_code)] += 1

    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            self.port,
            reuse_address=True,
            compression=None,
            ping_interval=None,
            close_timeout=1.0,
        )

    async def stop(self, graceful: bool) -> None:
        """Stop listening and end every connection (1012, or a TCP abort)."""
        server, self._server = self._server, None
        if server is None:
            return
        if graceful:
            server.close(code=1012, reason="service restart")
        else:
            server.close(close_connections=False)
            for connection in list(server.all_connections):
                connection.transport.abort()
        await server.wait_closed()


class InboundCounter(FrameProcessor):
    """Count the audio the transport's input delivers downstream (keeps nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_bytes = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, InputAudioRawFrame):
            self.audio_bytes += len(frame.audio)
        await self.push_frame(frame, direction)


@dataclass
class Events:
    """What the transport and the worker reported (counts and a few small lists)."""

    reconnecting: int = 0
    reconnected: list[tuple[float, float]] = field(default_factory=list)  # (when, downtime)
    disconnect_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    connection_errors: list[str] = field(default_factory=list)
    pipeline_errors: list[str] = field(default_factory=list)

    def watch(self, transport: WebsocketClientTransport, worker: PipelineWorker) -> None:
        @transport.event_handler("on_reconnecting")
        async def _reconnecting(_t, _attempt, _delay, _cause):
            self.reconnecting += 1

        @transport.event_handler("on_reconnected")
        async def _reconnected(_t, _attempt, downtime):
            self.reconnected.append((time.monotonic(), downtime))

        @transport.event_handler("on_disconnected")
        async def _disconnected(_t, ws):
            self.disconnect_codes[str(ws.close_code)] += 1

        @transport.event_handler("on_connection_error")
        async def _connection_error(_t, error):
            self.connection_errors.append(str(error)[:300])

        @worker.event_handler("on_pipeline_error")
        async def _pipeline_error(_w, frame: ErrorFrame):
            self.pipeline_errors.append(str(frame.error)[:300])


@dataclass
class Books:
    """The run's own counters: what was produced, pushed and measured at restarts."""

    produced_bytes: int = 0
    utterances: int = 0
    interruptions: int = 0
    restarts: list[dict[str, Any]] = field(default_factory=list)
    gap_s: float = 0.0  # sent (client) - received (server) at the last frozen point
    echo_gap_s: float = 0.0  # echoed (server) - received (client) at the last frozen point


def call_tasks(own: set[asyncio.Task]) -> list[asyncio.Task]:
    """Live asyncio tasks but the bench's own (feed, interruptions, restarts, sampling)."""
    return [t for t in asyncio.all_tasks() if t not in own]


def task_names(tasks: list[asyncio.Task]) -> collections.Counter[str]:
    """Tasks by name, numbers folded (``Foo#3::bar`` -> ``Foo#N::bar``)."""
    return collections.Counter(re.sub(r"\d+", "N", t.get_name()) for t in tasks)


def census() -> collections.Counter[str]:
    """Live Python objects by type after a full collection (garbage does not count)."""
    gc.collect()
    return collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
    )


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t_secs, y)`` points, per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx * 60.0


def median(values: list[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


class Soak:
    """One soak run; :meth:`run` returns the report."""

    COLUMNS = (
        "t_s",
        "rss_kb",
        "tasks",
        "fds",
        "objects",
        "produced_s",
        "sent_s",
        "dropped_s",
        "interrupted_s",
        "received_s",
        "connects",
    )

    def __init__(
        self,
        minutes: float,
        restart_every: float,
        interrupt_every: float,
        seed: int,
        sample_every: float | None = None,
        trace: bool = False,
    ) -> None:
        self.duration = minutes * 60.0
        self.restart_every = restart_every
        self.interrupt_every = interrupt_every
        self.seed = seed
        self.sample_every = sample_every or max(0.5, min(5.0, self.duration / 60.0))
        self.warmup = min(WARMUP_MAX_SECS, WARMUP_FRACTION * self.duration)
        self.trace = trace
        self.process = psutil.Process()
        self.server = CountingServer()
        self.books = Books()
        self.events = Events()
        self.samples: list[list[float]] = []
        self.start = 0.0
        self.stop_at = 0.0
        self.barge_in = asyncio.Event()
        self.own: set[asyncio.Task] = set()
        self.names_after_warmup: collections.Counter[str] | None = None
        self.trace_top: list[str] = []
        self.census_after_warmup: collections.Counter[str] | None = None
        self.census_at_end: collections.Counter[str] | None = None

    # -- the call ------------------------------------------------------------

    def make_transport(self) -> WebsocketClientTransport:
        return WebsocketClientTransport(
            self.server.uri,
            WebsocketClientParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                audio_out_end_silence_secs=0,
                audio_in_sample_rate=RATE,
                audio_out_sample_rate=RATE,
                reconnect=ReconnectParams(first_delay_secs=0.05),
            ),
        )

    async def feed(self, worker: PipelineWorker) -> None:
        """Speak like a TTS: ~1 s blocks of 40 ms frames on an absolute schedule, pauses."""
        rng = random.Random(self.seed)
        noise = random.Random(self.seed + 1)
        chunks = [noise.randbytes(CHUNK_BYTES) for _ in range(BLOCK_CHUNKS)]
        t = time.monotonic()
        while t < self.stop_at:
            self.books.utterances += 1
            context = f"utterance-{self.books.utterances}"
            length = round(rng.uniform(*UTTERANCE_SECS) / CHUNK_SECS)
            self.barge_in.clear()
            await worker.queue_frame(TTSStartedFrame(context_id=context))
            pushed = 0
            while pushed < length and not self.barge_in.is_set():
                if time.monotonic() >= self.stop_at:
                    break
                block = min(BLOCK_CHUNKS, length - pushed)
                await worker.queue_frames(
                    [TTSAudioRawFrame(chunks[i], RATE, 1, context_id=context) for i in range(block)]
                )
                self.books.produced_bytes += block * CHUNK_BYTES
                pushed += block
                await sleep_until(t + pushed * CHUNK_SECS)  # when this block has played
            await worker.queue_frame(TTSStoppedFrame(context_id=context))
            t = max(t + pushed * CHUNK_SECS, time.monotonic()) + rng.uniform(*PAUSE_SECS)
            await sleep_until(min(t, self.stop_at))

    async def interrupt(self, worker: PipelineWorker) -> None:
        """Barge in every ``interrupt_every`` seconds (+/- 20 %, seeded)."""
        rng = random.Random(self.seed + 2)
        k = 1
        while True:
            jitter = rng.uniform(-INTERRUPT_JITTER, INTERRUPT_JITTER)
            at = self.start + (k + jitter) * self.interrupt_every
            if at >= self.stop_at:
                return
            await sleep_until(at)
            await worker.queue_frame(InterruptionFrame())
            self.barge_in.set()
            self.books.interruptions += 1
            k += 1

    def frozen_gaps(self, transport: WebsocketClientTransport) -> tuple[float, float]:
        """(audio sent but not received, echo sent but not received) since the last call.

        Only meaningful while nothing can move: the server down (or the call
        over) and the client disconnected.
        """
        s = transport.stats
        gap = s.audio_secs_sent - secs(self.server.audio_bytes)
        echo_gap = secs(self.server.echoed_bytes) - s.audio_secs_received
        lost, self.books.gap_s = gap - self.books.gap_s, gap
        echo_lost, self.books.echo_gap_s = echo_gap - self.books.echo_gap_s, echo_gap
        return lost, echo_lost

    async def restart(self, transport: WebsocketClientTransport) -> None:
        """Restart the server every ``restart_every`` s: graceful (1012) and abort in turn."""
        rng = random.Random(self.seed + 3)
        k = 1
        while True:
            at = self.start + k * self.restart_every
            if at + OUTAGE_SECS[1] + 2.0 > self.stop_at:
                return
            await sleep_until(at)
            graceful = k % 2 == 1
            outage = rng.uniform(*OUTAGE_SECS)
            before = len(self.events.reconnected)
            dropped_before = transport.stats.dropped_audio_secs
            stopped = time.monotonic()
            await self.server.stop(graceful=graceful)
            await sleep_until(stopped + outage)
            still_connected = transport.session.is_connected
            lost, echo_lost = self.frozen_gaps(transport)
            await self.server.start()
            back = time.monotonic()
            record: dict[str, Any] = {
                "t_s": round(stopped - self.start, 2),
                "mode": "graceful" if graceful else "abort",
                "outage_s": round(outage, 3),
                "client_still_connected_when_measured": still_connected,
                "lost_after_send_s": amount(lost),
                "echo_lost_s": amount(echo_lost),
            }
            deadline = back + 15.0
            while len(self.events.reconnected) <= before and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if len(self.events.reconnected) > before:
                when, downtime = self.events.reconnected[before]
                record["reconnected_after_server_back_ms"] = round((when - back) * 1000, 1)
                record["downtime_s"] = round(downtime, 3)
            else:
                record["reconnected_after_server_back_ms"] = None
            await asyncio.sleep(max(0.0, outage + 2.0 - (time.monotonic() - back)))
            record["dropped_s"] = round(transport.stats.dropped_audio_secs - dropped_before, 3)
            self.books.restarts.append(record)
            k += 1

    # -- sampling ------------------------------------------------------------

    def sample(self, transport: WebsocketClientTransport) -> None:
        now = time.monotonic()
        rss_kb = self.process.memory_info().rss // 1024
        tasks = len(call_tasks(self.own))
        fds = self.process.num_fds()
        objects = len(gc.get_objects())
        s = transport.stats
        self.samples.append(
            [
                round(now - self.start, 2),
                rss_kb,
                tasks,
                fds,
                objects,
                round(secs(self.books.produced_bytes), 3),
                round(s.audio_secs_sent, 3),
                round(s.dropped_audio_secs, 3),
                round(s.interrupted_audio_secs, 3),
                round(secs(self.server.audio_bytes), 3),
                s.connects,
            ]
        )

    async def sampler(self, transport: WebsocketClientTransport) -> None:
        k = 0
        while True:
            await sleep_until(self.start + k * self.sample_every)
            if self.names_after_warmup is None and time.monotonic() - self.start >= self.warmup:
                self.names_after_warmup = task_names(call_tasks(self.own))
                self.census_after_warmup = census()
                if self.trace:
                    tracemalloc.start()
            self.sample(transport)
            k += 1

    # -- the run -------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        gc.collect()
        current = asyncio.current_task()
        assert current is not None
        self.own.add(current)
        tasks_before = len(call_tasks(self.own))
        fds_before = self.process.num_fds()
        await self.server.start()
        transport = self.make_transport()
        counter = InboundCounter()
        worker = PipelineWorker(
            Pipeline([transport.input(), counter, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
        )
        self.events.watch(transport, worker)
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        deadline = time.monotonic() + 10
        while not transport.session.is_connected:
            if time.monotonic() > deadline or running.done():
                raise RuntimeError(f"the call did not connect to {self.server.uri}")
            await asyncio.sleep(0.01)
        self.start = time.monotonic()
        self.stop_at = self.start + self.duration
        sampler = asyncio.create_task(self.sampler(transport))
        jobs = [
            asyncio.create_task(self.feed(worker)),
            asyncio.create_task(self.interrupt(worker)),
            asyncio.create_task(self.restart(transport)),
        ]
        self.own.update([sampler, *jobs])
        gathered = asyncio.gather(*jobs)
        await asyncio.wait([running, gathered], return_when=asyncio.FIRST_COMPLETED)
        ended_early = not gathered.done()  # the pipeline ended by itself: a failure
        if ended_early:
            gathered.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gathered  # raises what a job raised
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        self.sample(transport)
        names_at_end = task_names(call_tasks(self.own))
        self.census_at_end = census()
        if self.trace and tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            self.trace_top = [str(s) for s in snapshot.statistics("lineno")[:25]]
        run_secs = time.monotonic() - self.start
        end_secs = None
        if not running.done():
            t0 = time.monotonic()
            await worker.queue_frame(EndFrame())
            try:
                await asyncio.wait_for(asyncio.shield(running), 30)
                end_secs = time.monotonic() - t0
            except TimeoutError:
                await worker.cancel()
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(running, 10)
        deadline = time.monotonic() + 5
        while self.server.live and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        lost_at_end, echo_lost_at_end = self.frozen_gaps(transport)
        await self.server.stop(graceful=True)
        await asyncio.sleep(0.5)
        gc.collect()
        return self.report(
            transport,
            counter,
            run_secs=run_secs,
            end_secs=end_secs,
            ended_early=ended_early,
            lost_at_end=lost_at_end,
            echo_lost_at_end=echo_lost_at_end,
            leftovers={
                "tasks_before_call": tasks_before,
                "tasks_after_call": len(call_tasks(self.own)),
                "fds_before_call": fds_before,
                "fds_after_call": self.process.num_fds(),
            },
            names_at_end=names_at_end,
        )

    # -- the report ----------------------------------------------------------

    def trend(self, column: str, digits: int = 3) -> dict[str, Any]:
        i = self.COLUMNS.index(column)
        rows = self.samples
        steady = [r for r in rows if r[0] >= self.warmup]
        slope = slope_per_min([(r[0], r[i]) for r in steady])
        tenth = max(1, len(steady) // 10)
        first = median([r[i] for r in steady[:tenth]])
        last = median([r[i] for r in steady[-tenth:]])
        return {
            "start": rows[0][i] if rows else None,
            "after_warmup": steady[0][i] if steady else None,
            "end": rows[-1][i] if rows else None,
            "min": min(r[i] for r in steady) if steady else None,
            "max": max(r[i] for r in steady) if steady else None,
            "slope_per_min": None if slope is None else round(slope, digits),
            "growth_first_to_last_tenth": (
                None if first is None or last is None else round(last - first, digits)
            ),
        }

    def report(
        self,
        transport: WebsocketClientTransport,
        counter: InboundCounter,
        *,
        run_secs: float,
        end_secs: float | None,
        ended_early: bool,
        lost_at_end: float,
        echo_lost_at_end: float,
        leftovers: dict[str, int],
        names_at_end: collections.Counter[str],
    ) -> dict[str, Any]:
        s = transport.stats
        restarts = self.books.restarts
        graceful = [r for r in restarts if r["mode"] == "graceful"]
        aborts = [r for r in restarts if r["mode"] == "abort"]
        produced = secs(self.books.produced_bytes)
        received = secs(self.server.audio_bytes)
        lost_graceful = sum(r["lost_after_send_s"] for r in graceful)
        lost_aborts = sum(r["lost_after_send_s"] for r in aborts)
        client_unaccounted = (
            produced - s.audio_secs_sent - s.dropped_audio_secs - s.interrupted_audio_secs
        )
        unaccounted = (
            produced - received - s.dropped_audio_secs - s.interrupted_audio_secs - lost_aborts
        )
        audio = {
            "produced_s": round(produced, 3),
            "sent_s": round(s.audio_secs_sent, 3),
            "received_by_server_s": round(received, 3),
            "dropped_s": round(s.dropped_audio_secs, 3),
            "interrupted_s": round(s.interrupted_audio_secs, 3),
            "client_unaccounted_s": amount(client_unaccounted),
            "lost_after_send_at_graceful_restarts_s": amount(lost_graceful),
            "lost_in_tcp_at_aborts_s": amount(lost_aborts),
            "lost_after_send_at_end_s": amount(lost_at_end),
            "unaccounted_s": amount(unaccounted),
            "tolerance_s": ACCOUNTING_TOLERANCE_SECS,
            "echo": {
                "echoed_by_server_s": round(secs(self.server.echoed_bytes), 3),
                "received_by_client_s": round(s.audio_secs_received, 3),
                "delivered_downstream_s": round(secs(counter.audio_bytes), 3),
                "lost_at_graceful_restarts_s": amount(sum(r["echo_lost_s"] for r in graceful)),
                "lost_at_aborts_s": amount(sum(r["echo_lost_s"] for r in aborts)),
                "lost_at_end_s": amount(echo_lost_at_end),
            },
        }
        reconnected = [r for r in restarts if r.get("reconnected_after_server_back_ms") is not None]
        backs = [r["reconnected_after_server_back_ms"] for r in reconnected]
        events = {
            "restarts": len(restarts),
            "graceful_restarts": len(graceful),
            "abort_restarts": len(aborts),
            "restarts_reconnected": len(reconnected),
            "interruptions": self.books.interruptions,
            "interruptions_received_by_server": self.server.interruptions,
            "utterances": self.books.utterances,
            "reconnects": len(self.events.reconnected),
            "reconnecting_events": self.events.reconnecting,
            "connects": s.connects,
            "connect_failures": s.connect_failures,
            "disconnects": s.disconnects,
            "disconnect_codes": dict(self.events.disconnect_codes),
            "server_connections": self.server.connections,
            "server_close_codes": dict(self.server.close_codes),
            "reconnected_after_server_back_ms": {
                "median": median(backs),
                "max": max(backs) if backs else None,
            },
            "max_downtime_s": max((r.get("downtime_s") or 0 for r in restarts), default=None),
            "connection_errors": self.events.connection_errors[:10],
            "pipeline_errors": self.events.pipeline_errors[:10],
            "decode_errors": s.decode_errors,
            "ended_early": ended_early,
            "end_frame_to_done_s": None if end_secs is None else round(end_secs, 3),
        }
        resources = {
            "rss_kb": self.trend("rss_kb", 1),
            "tasks": self.trend("tasks"),
            "fds": self.trend("fds"),
            "objects": self.trend("objects", 1),
            **leftovers,
        }
        if self.census_after_warmup is not None and self.census_at_end is not None:
            grown = self.census_at_end.copy()
            grown.subtract(self.census_after_warmup)
            resources["objects_after_gc"] = {
                "after_warmup": sum(self.census_after_warmup.values()),
                "end": sum(self.census_at_end.values()),
                "growth": sum(grown.values()),
                "by_type": dict(
                    sorted(
                        ((k, v) for k, v in grown.items() if v),
                        key=lambda kv: -abs(kv[1]),
                    )[:20]
                ),
            }
        if self.names_after_warmup is not None:
            delta = names_at_end.copy()
            delta.subtract(self.names_after_warmup)
            resources["task_names_delta_after_warmup"] = {k: v for k, v in delta.items() if v}
        measured_minutes = (run_secs - self.warmup) / 60.0
        slopes = {
            "rss_kb": resources["rss_kb"]["slope_per_min"],
            "tasks": resources["tasks"]["slope_per_min"],
            "fds": resources["fds"]["slope_per_min"],
        }
        limits = {
            "rss_kb": RSS_SLOPE_MAX_KB_PER_MIN,
            "tasks": TASK_SLOPE_MAX_PER_MIN,
            "fds": FD_SLOPE_MAX_PER_MIN,
        }
        flat: bool | None = None
        over = [k for k, v in slopes.items() if v is not None and v >= limits[k]]
        if measured_minutes >= MIN_MINUTES_TO_JUDGE_FLAT:
            flat = not over
        nothing_uncounted = (
            abs(client_unaccounted) <= ACCOUNTING_TOLERANCE_SECS
            and abs(unaccounted) <= ACCOUNTING_TOLERANCE_SECS
        )
        survived = (
            not ended_early
            and end_secs is not None
            and len(reconnected) == len(restarts)
            and not self.events.connection_errors
            and not self.events.pipeline_errors
        )
        verdict = {
            "flat": flat,
            "flat_over_threshold": over,
            "flat_judged": measured_minutes >= MIN_MINUTES_TO_JUDGE_FLAT,
            "nothing_uncounted": nothing_uncounted,
            "survived": survived,
            "ok": flat is not False and nothing_uncounted and survived,
        }
        report: dict[str, Any] = {
            "params": {
                "minutes": round(self.duration / 60.0, 3),
                "restart_every_s": self.restart_every,
                "interrupt_every_s": self.interrupt_every,
                "seed": self.seed,
                "sample_every_s": self.sample_every,
                "warmup_s": self.warmup,
                "chunk_s": CHUNK_SECS,
                "feed": (
                    f"utterances of {UTTERANCE_SECS[0]}-{UTTERANCE_SECS[1]} s, "
                    f"{BLOCK_CHUNKS * CHUNK_SECS:.0f} s of 40 ms TTSAudioRawFrames at once on "
                    f"an absolute schedule, pauses of {PAUSE_SECS[0]}-{PAUSE_SECS[1]} s, "
                    "abandoned on interruption"
                ),
                "outage_s": list(OUTAGE_SECS),
                "restart_modes": "graceful (1012) and abort, alternately",
                "buffer_audio_secs": ReconnectParams().buffer_audio_secs,
            },
            "thresholds": {
                "rss_slope_max_kb_per_min": RSS_SLOPE_MAX_KB_PER_MIN,
                "task_slope_max_per_min": TASK_SLOPE_MAX_PER_MIN,
                "fd_slope_max_per_min": FD_SLOPE_MAX_PER_MIN,
                "min_minutes_to_judge_flat": MIN_MINUTES_TO_JUDGE_FLAT,
                "accounting_tolerance_s": ACCOUNTING_TOLERANCE_SECS,
            },
            "run_s": round(run_secs, 1),
            "measured_minutes": round(measured_minutes, 2),
            "verdict": verdict,
            "events": events,
            "resources": resources,
            "audio": audio,
            "stats": s.as_dict(),
            "restarts": restarts,
        }
        if self.trace_top:
            report["tracemalloc_top"] = self.trace_top
        report["samples"] = {"columns": list(self.COLUMNS), "rows": self.samples}
        return report


def dumps(report: dict[str, Any]) -> str:
    """JSON with indent 2, but one line per sample and per restart."""
    compact: dict[str, str] = {}

    def mark(value: Any) -> str:
        key = f"@@{len(compact)}@@"
        compact[key] = json.dumps(value)
        return key

    shown = dict(report)
    shown["restarts"] = [mark(r) for r in report["restarts"]]
    shown["samples"] = dict(report["samples"], rows=[mark(r) for r in report["samples"]["rows"]])
    text = json.dumps(shown, indent=2)
    for key, value in compact.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"


def summary(report: dict[str, Any]) -> str:
    ev, res, audio, v = report["events"], report["resources"], report["audio"], report["verdict"]

    def trend(name: str, unit: str) -> str:
        r = res[name]
        return (
            f"{r['start']} -> {r['end']} (after warm-up {r['after_warmup']}), "
            f"slope {r['slope_per_min']} {unit}/min"
        )

    flat = {True: "yes", False: "NO", None: "not judged (run too short)"}[v["flat"]]
    lines = [
        f"soak: {report['run_s'] / 60:.2f} min, {ev['restarts']} restarts "
        f"({ev['graceful_restarts']} graceful, {ev['abort_restarts']} abort), "
        f"{ev['interruptions']} interruptions, {ev['reconnects']} reconnects",
        f"  RSS kB  {trend('rss_kb', 'kB')}",
        f"  tasks   {trend('tasks', 'tasks')}",
        f"  fds     {trend('fds', 'fds')}",
        f"  objects {trend('objects', 'objects')}",
        *(
            [
                f"          after a full collection: {gc_['after_warmup']} after warm-up -> "
                f"{gc_['end']} at the end ({gc_['growth']:+d})"
            ]
            if (gc_ := res.get("objects_after_gc"))
            else []
        ),
        f"  audio   produced {audio['produced_s']} s, received {audio['received_by_server_s']} s, "
        f"dropped {audio['dropped_s']} s, interrupted {audio['interrupted_s']} s",
        f"          lost in TCP at aborts {audio['lost_in_tcp_at_aborts_s']} s, "
        f"unaccounted {audio['unaccounted_s']} s (client books: "
        f"{audio['client_unaccounted_s']} s; tolerance {CHUNK_SECS} s)",
        f"  verdict flat: {flat}{' ' + str(v['flat_over_threshold']) if v['flat'] is False else ''}"
        f"; nothing uncounted: {'yes' if v['nothing_uncounted'] else 'NO'}"
        f"; survived: {'yes' if v['survived'] else 'NO'}",
    ]
    return "\n".join(lines)


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the call (default 30)")
    p.add_argument("--restart-every", type=float, default=60.0, help="seconds between restarts")
    p.add_argument(
        "--interrupt-every", type=float, default=10.0, help="seconds between interruptions"
    )
    p.add_argument("--seed", type=int, default=13, help="seed of utterances, outages, jitter")
    p.add_argument("--sample-every", type=float, default=None, help="seconds between samples")
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations after warm-up and report the top source lines (slower)",
    )
    args = p.parse_args()
    if args.quick:
        args.minutes, args.restart_every, args.interrupt_every = 0.5, 10.0, 3.0
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    soak = Soak(
        args.minutes,
        args.restart_every,
        args.interrupt_every,
        args.seed,
        sample_every=args.sample_every,
        trace=args.tracemalloc,
    )
    report = asyncio.run(soak.run())
    folder = out_dir(args)
    report = {
        "benchmark": "soak",
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "code": code_version(),
        **report,
    }
    path = folder / "soak.json"
    path.write_text(dumps(report))
    print(summary(report))
    print(f"wrote {path}")
    return 0 if report["verdict"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
