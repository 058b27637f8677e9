#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The caller's processors: taps that keep what was sent and heard, a task that pushes a source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pipecat.frames.frames import (
    AudioRawFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_wsclient.audio.track import Track
from pipecat_wsclient.sender import SENT_KEY


class Heard(FrameProcessor):
    """Keep the audio the far end sends (not passed on) and note interruptions."""

    def __init__(self, track: Track, interruptions: list[float]):
        super().__init__()
        self._track = track
        self._interruptions = interruptions

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Record inbound audio at its playback time; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._track.add(time.monotonic(), frame.audio)
            return
        if isinstance(frame, InterruptionFrame) and direction == FrameDirection.DOWNSTREAM:
            self._interruptions.append(time.monotonic())
        await self.push_frame(frame, direction)


class AudioTap(FrameProcessor):
    """Hands each audio frame of one kind to a callback and keeps it (not passed on).

    After the output, ``AudioTap(OutputAudioRawFrame, on_sent)`` sees each
    chunk once it has been sent; after the input, ``AudioTap(InputAudioRawFrame,
    on_heard)`` sees what the far end sent. Other frames pass.
    """

    def __init__(self, kind: type[AudioRawFrame], on_audio: Callable[[bytes], object]):
        super().__init__()
        self._kind = kind
        self._on_audio = on_audio

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Give audio of the kind to the callback; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, self._kind):
            self._on_audio(frame.audio)
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


class Sent(FrameProcessor):
    """After the output: audio arrives here once it has been sent (not passed on).

    The output pushes what it wrote gathered into frames of about 0.1 s; each
    chunk in them is placed on the track when it was written (``SENT_KEY``),
    as the far end receives it.
    """

    def __init__(self, track: Track):
        super().__init__()
        self._track = track

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Place sent audio on the track; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            sent = frame.metadata.get(SENT_KEY) or [(time.monotonic(), len(frame.audio))]
            audio, offset = frame.audio, 0
            for at, size in sent:
                self._track.add(at, audio[offset : offset + size])
                offset += size
        else:
            await self.push_frame(frame, direction)
