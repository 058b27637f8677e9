#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One speech service run alone: ``Pipeline([service, collector])`` fed frames, then ended.

The common ground of :class:`~pipecat_wsclient.scenario.tts.Synthesizer` and
:class:`~pipecat_wsclient.scenario.stt.Transcriber`: :func:`run_alone` runs
any Pipecat service on the frames a real pipeline would give it and returns
what reached the end; every failure of speech is a :class:`SpeechError`::

    frames = await run_alone(
        service,
        [TTSSpeakFrame(text), EndFrame()],
        PipelineParams(audio_out_sample_rate=16000),
        collect=(TTSAudioRawFrame,),
        timeout=60.0,
        what="speech for 'Hi'",
    )
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loguru import logger
from pipecat.frames.frames import CancelFrame, ErrorFrame, Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

DEFAULT_TIMEOUT_SECS = 60.0
"""Seconds one synthesis or transcription may take, by default."""

_CANCEL_TIMEOUT_SECS = 5.0  # for a cancelled pipeline to end


class SpeechError(RuntimeError):
    """Speech could not be synthesized or transcribed; the message says what and why."""


class _Collector(FrameProcessor):
    """Keeps the frames of the given types (and errors) that reach the end of the pipeline."""

    def __init__(self, types: tuple[type[Frame], ...]):
        super().__init__()
        self._types = (*types, ErrorFrame)
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, self._types):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


async def run_alone(
    service: FrameProcessor,
    frames: Sequence[Frame],
    params: PipelineParams,
    *,
    collect: tuple[type[Frame], ...],
    timeout: float | None,
    what: str,
) -> list[Frame]:
    """Run ``service`` in ``Pipeline([service, collector])`` on ``frames``; what it produced.

    Args:
        service: A fresh service (it is used once).
        frames: What to queue, ending with an ``EndFrame``.
        params: The pipeline's parameters (its audio rates).
        collect: The frame types to keep as they reach the end of the pipeline.
        timeout: Seconds the run may take; ``None`` for no limit.
        what: What is being made, for error messages (e.g. ``speech for 'Hi'``).

    Returns:
        The collected frames, in order.

    Raises:
        SpeechError: Naming ``what`` and the cause, for an ``ErrorFrame``
            (upstream or downstream) or a run longer than ``timeout``.
    """
    collector = _Collector(collect)
    pipeline = Pipeline([service, collector])
    worker = PipelineWorker(pipeline, params=params, enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    errors: list[str] = []
    failed = asyncio.Event()
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_pipeline_started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame.error)
        failed.set()  # the result is wrong anyway: stop at once

    await worker.queue_frames(frames)
    await runner.add_workers(worker)
    run = asyncio.ensure_future(runner.run())
    failure = asyncio.ensure_future(failed.wait())
    try:
        await asyncio.wait({run, failure}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        timed_out = not run.done() and not failed.is_set()
    finally:
        failure.cancel()
        if not run.done():  # failed, timed out, or we are cancelled
            if started.is_set():
                await pipeline.queue_frame(CancelFrame(reason=f"{what}: stopped"))
            else:
                await runner.cancel(reason=f"{what}: stopped")
            await _finish(run, what)
    if timed_out:
        raise SpeechError(f"{what}: {type(service).__name__} took longer than {timeout} s")
    if not failed.is_set():
        run.result()
    errors += [f.error for f in collector.frames if isinstance(f, ErrorFrame)]
    if errors:
        raise SpeechError(f"{what}: {type(service).__name__} failed: {'; '.join(errors)}")
    return collector.frames


async def _finish(run: asyncio.Future[None], what: str) -> None:
    """Wait for a pipeline run being cancelled to end; cancel its task if it does not.

    The pipeline is cancelled with a ``CancelFrame`` queued into the pipeline
    itself: the worker's own cancel would wait behind the ``EndFrame`` it has
    already queued, which waits for the service, the part that failed or is
    stuck. The ``CancelFrame`` reaching the end also ends that wait.
    """
    await asyncio.wait({run}, timeout=_CANCEL_TIMEOUT_SECS)
    if run.done():
        if not run.cancelled():
            run.exception()  # retrieved: the run was stopped, how it ended does not matter
        return
    logger.warning(f"{what}: the pipeline did not end when cancelled; cancelling its task")
    run.cancel()
