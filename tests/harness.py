"""Run real Pipecat pipelines around our transport in tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport

RATE = 16000


def client_params(**overrides) -> WebsocketClientParams:
    """Params for tests: audio both ways, raw PCM, no end silence; ``overrides`` win."""
    values = dict(
        audio_in_enabled=True,
        audio_out_enabled=True,
        add_wav_header=False,
        audio_out_end_silence_secs=0,
    )
    values.update(overrides)
    return WebsocketClientParams(**values)


def make_transport(uri: str, **overrides) -> WebsocketClientTransport:
    """A transport to ``uri`` with :func:`client_params`."""
    return WebsocketClientTransport(uri, client_params(**overrides))


def pcm(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 1) -> bytes:
    """Deterministic, non-silent 16-bit PCM noise; different seeds share no chunk."""
    n = int(seconds * rate) * channels
    return random.Random(seed).randbytes(2 * n)


class Collector(FrameProcessor):
    """Pass frames through and keep those of the given types, with arrival times."""

    def __init__(self, types: tuple[type[Frame], ...] = (Frame,)):
        super().__init__()
        self._types = types
        self.frames: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, self._types):
            self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)

    def of(self, cls: type[Frame]) -> list[Frame]:
        return [f for _, f in self.frames if isinstance(f, cls)]

    def audio(self) -> bytes:
        return b"".join(f.audio for f in self.of(InputAudioRawFrame))  # type: ignore[attr-defined]


class InputToOutput(FrameProcessor):
    """Turn received audio into audio to send (a local echo)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
            )
        else:
            await self.push_frame(frame, direction)


@dataclass
class RunningPipeline:
    worker: PipelineWorker
    runner: WorkerRunner
    task: asyncio.Task
    collector: Collector
    errors: list[ErrorFrame] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, *frames: Frame) -> None:
        await self.worker.queue_frames(list(frames))

    async def end(self, timeout: float = 15.0) -> float:
        """Queue an EndFrame and wait for the pipeline to finish; return the time it took."""
        start = time.monotonic()
        await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(self.task, timeout)
        return time.monotonic() - start

    async def wait(self, timeout: float) -> float:
        start = time.monotonic()
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return time.monotonic() - start


@contextlib.asynccontextmanager
async def run_pipeline(
    transport: WebsocketClientTransport,
    middle: Sequence[FrameProcessor] = (),
    *,
    with_input: bool = True,
    with_output: bool = True,
    rate: int = RATE,
) -> AsyncIterator[RunningPipeline]:
    """Run ``input -> collector -> middle -> output`` until the body exits, then cancel."""
    collector = Collector()
    processors: list[FrameProcessor] = []
    if with_input:
        processors.append(transport.input())
    processors.append(collector)
    processors.extend(middle)
    if with_output:
        processors.append(transport.output())
    worker = PipelineWorker(
        Pipeline(processors),
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
        idle_timeout_secs=None,
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
    )
    running: RunningPipeline

    @worker.event_handler("on_pipeline_error")
    async def _on_error(_worker, frame: ErrorFrame):
        running.errors.append(frame)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    running = RunningPipeline(worker, runner, task, collector)
    try:
        yield running
    finally:
        if not task.done():
            await worker.cancel()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01) -> float:
    """Poll ``predicate`` until true; return how long it took; fail on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
    return time.monotonic() - start


@contextlib.contextmanager
def websockets_debug_log() -> Iterator[list[str]]:
    """Capture websockets' debug lines for our connections, as a handler would see them."""
    import logging

    from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep()
    WEBSOCKETS_LOGGER.addHandler(handler)
    WEBSOCKETS_LOGGER.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        WEBSOCKETS_LOGGER.removeHandler(handler)
        WEBSOCKETS_LOGGER.setLevel(logging.NOTSET)
