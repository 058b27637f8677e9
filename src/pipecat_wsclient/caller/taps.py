#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The caller's processors: the listener, the tap after the output, a task that pushes a source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_wsclient.sender import SENT_KEY

OnAudio = Callable[[float, bytes], object]
"""Called with ``(time.monotonic() of the event, 16-bit PCM)``."""


class Listener(FrameProcessor):
    """After the input: the bot's audio goes to ``on_heard``, not on; interruptions are noted.

    Neither is passed on: the bot's audio would echo back, and the bot's
    interruption must not cut the caller's own speech short. Other frames pass.
    """

    def __init__(self, on_heard: OnAudio, on_interruption: Callable[[float], object]):
        """Initialize the listener.

        Args:
            on_heard: Gets ``(arrival time, PCM)`` of each chunk of the bot's audio.
            on_interruption: Gets the time of each interruption.
        """
        super().__init__()
        self._on_heard = on_heard
        self._on_interruption = on_interruption

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Hand inbound audio and interruptions over; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._on_heard(time.monotonic(), frame.audio)
            return
        if isinstance(frame, InterruptionFrame) and direction == FrameDirection.DOWNSTREAM:
            self._on_interruption(time.monotonic())
            return
        await self.push_frame(frame, direction)


class SentTap(FrameProcessor):
    """After the output: each chunk sent goes to ``on_sent`` with its send time (not on).

    The output may push what it wrote gathered into frames of about 0.1 s;
    each chunk in them is handed over with the time it was written
    (``SENT_KEY``), as the far end receives it.
    """

    def __init__(self, on_sent: OnAudio):
        """Initialize the tap.

        Args:
            on_sent: Gets ``(send time, PCM)`` of each chunk, in order.
        """
        super().__init__()
        self._on_sent = on_sent

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Hand sent audio over; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            sent = frame.metadata.get(SENT_KEY) or [(time.monotonic(), len(frame.audio))]
            audio, offset = frame.audio, 0
            for at, size in sent:
                self._on_sent(at, audio[offset : offset + size])
                offset += size
        else:
            await self.push_frame(frame, direction)


class SourceTask(FrameProcessor):
    """A processor that runs :meth:`produce` from its ``StartFrame`` to its end.

    A microphone (a scenario's, the browser phone's) pushes its audio from
    that task; ``EndFrame`` and ``CancelFrame`` cancel it before they pass.
    """

    task_name = "source"
    """The task's name (after the processor's)."""

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task | None = None

    async def produce(self) -> None:
        """Push frames downstream until cancelled."""
        raise NotImplementedError

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Start the task after ``StartFrame``; cancel it at the end; pass every frame."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._task = self.create_task(self.produce(), self.task_name)
            return
        if isinstance(frame, (EndFrame, CancelFrame)) and self._task is not None:
            await self.cancel_task(self._task)
            self._task = None
        await self.push_frame(frame, direction)
