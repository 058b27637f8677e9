#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the carrier and Asterisk serializers share: one call, a task of its own.

:class:`CallSerializer` keeps the transport's :class:`~pipecat_wsclient.hooks.ProtocolIO`
from ``attach(io)`` and runs the subclass's background task with it, brings
the far end's audio to the pipeline's input rate, and makes sure the call is
hung up once. Audio the inbound resampler still holds when the far end goes
quiet (Asterisk sends nothing while the caller is silent) is flushed by the
background task after :attr:`CallSerializer.input_flush_secs` without media,
and by :meth:`CallSerializer.end_input` when the call ends sooner (the
transport's input calls it before the pipeline's ``EndFrame`` passes it,
after a hang-up, the connection's close or our own end).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import ClassVar

from pipecat.frames.frames import InputAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

from pipecat_wsclient.hooks import ProtocolIO
from pipecat_wsclient.protocols.audio import Resampler


class CallSerializer(FrameSerializer):
    """Base of the serializers that play one side of a call.

    Subclasses implement :meth:`_run` (started by :meth:`attach`), call
    :meth:`_to_pipeline_rate` on the audio they receive and :meth:`_end_once`
    before they send the hang-up. ``self._io`` is None until ``attach``.
    """

    task_name: ClassVar[str] = "protocol"
    """The background task is named ``f"{self}::{task_name}"``."""

    input_flush_secs: float = 0.06
    """After this long with none of the far end's audio playing (3 ptimes of
    20 ms after the last audio received has played out), what the inbound
    resampler still holds is flushed to the pipeline. Counted from the end of
    the audio, not from the last message: a bot whose audio comes in lumps of
    95 ms (Pipecat's own resampler) is talking on between them, and a flush
    there would start a new stream, and its filter's delay of silence, at
    every lump."""

    def __init__(self):
        """Initialize with no transport attached yet."""
        super().__init__()
        self._pipeline_in_rate = 16000
        self._io: ProtocolIO | None = None
        self._in_resampler = Resampler()
        self._in_media_at = 0.0
        self._in_audio_end = 0.0  # when the far end's audio received so far has played
        self._ended = False

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Take the pipeline's input rate for the audio we deliver."""
        self._pipeline_in_rate = setup.audio_in_sample_rate

    async def attach(self, io: ProtocolIO) -> None:
        """Keep the transport's I/O and start the background task (called by the transport).

        Args:
            io: Send, deliver and run tasks on the transport's behalf.
        """
        self._io = io
        io.create_task(self._run(), f"{self}::{self.task_name}")

    @abstractmethod
    async def _run(self) -> None:
        """The background task, run until the transport stops."""

    async def _to_pipeline_rate(self, pcm: bytes, sample_rate: int) -> bytes:
        """16-bit PCM at ``sample_rate`` to the pipeline's input rate."""
        now = self._in_media_at = time.monotonic()
        secs = len(pcm) / (2 * sample_rate) if sample_rate > 0 else 0.0
        self._in_audio_end = max(now, self._in_audio_end) + secs
        return await self._in_resampler.resample(pcm, sample_rate, self._pipeline_in_rate)

    async def flush_input(self) -> bytes:
        """What the inbound resampler still holds, at the pipeline's rate (empty if nothing).

        The background task calls it once the far end has been quiet for
        :attr:`input_flush_secs`; the next media starts a new resampler stream.
        """
        return await self._in_resampler.flush()

    async def end_input(self) -> None:
        """The far end's audio has ended: deliver what the inbound resampler still holds.

        The transport's input calls it before the pipeline's ``EndFrame``
        passes it (the far end hung up or closed, or the pipeline ends), so
        the last milliseconds of the far end's audio are not lost when the
        call ends within :attr:`input_flush_secs` of them.
        """
        tail = await self.flush_input()
        if tail and self._io is not None:
            await self._io.deliver(InputAudioRawFrame(tail, self._pipeline_in_rate, 1))

    async def _flush_quiet_input(self, now: float) -> bytes:
        """The inbound resampler's tail if none of the far end's audio has played for a while."""
        quiet = now - max(self._in_media_at, self._in_audio_end)
        if not self._in_resampler.pending or quiet < self.input_flush_secs:
            return b""
        return await self.flush_input()

    def _end_once(self) -> bool:
        """True the first time the call ends (send the hang-up then), False after that."""
        if self._ended:
            return False
        self._ended = True
        return True
