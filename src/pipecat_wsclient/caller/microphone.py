#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The line's microphone: what the caller says, or silence, 20 ms at a time in real time.

A phone line never goes quiet: a carrier sends a 20 ms frame for the whole
call, so a bot's voice detector hears the silence that ends an utterance.
:class:`LineMicrophone` is a pipeline source that sends the speech queued to
it, and silence when there is none, on an absolute schedule.

Example::

    mic = LineMicrophone(8000)
    caller = Caller(line, on_heard=..., on_sent=..., sources=[mic])
    offset = mic.enqueue(pcm)   # where this speech starts in what the mic sends
"""

from __future__ import annotations

import asyncio
import time

from pipecat.frames.frames import OutputAudioRawFrame

from pipecat_wsclient.caller.taps import SourceTask

FRAME_SECS = 0.02
"""The microphone sends 20 ms at a time."""

MIC_LEAD_SECS = 0.06
"""How far ahead of real time the microphone hands audio to the output (it paces)."""


class LineMicrophone(SourceTask):
    """Sends our speech, or silence, 20 ms at a time in real time."""

    task_name = "microphone"

    def __init__(self, rate: int):
        """Initialize a microphone with nothing queued.

        Args:
            rate: The pipeline's sample rate (16-bit mono PCM); may be set
                later through ``rate``, before the pipeline starts.
        """
        super().__init__()
        self.rate = rate
        self._speech = bytearray()
        self.pushed_bytes = 0

    @property
    def _frame_bytes(self) -> int:
        return 2 * round(self.rate * FRAME_SECS)

    def enqueue(self, pcm: bytes) -> int:
        """Queue speech; return its byte offset in everything the microphone sends."""
        offset = self.pushed_bytes + len(self._speech)
        self._speech += pcm
        # Keep the stream frame-aligned: pad the speech to whole 20 ms frames.
        self._speech += bytes(-len(self._speech) % self._frame_bytes)
        return offset

    @property
    def queued_bytes(self) -> int:
        """Speech not sent yet."""
        return len(self._speech)

    async def produce(self) -> None:
        """Our speech when queued, else silence, on an absolute 20 ms schedule."""
        start = time.monotonic()
        n = 0
        silence = bytes(self._frame_bytes)
        while True:
            due = start + n * FRAME_SECS - MIC_LEAD_SECS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._speech:
                chunk = bytes(self._speech[: self._frame_bytes])
                del self._speech[: self._frame_bytes]
            else:
                chunk = silence
            self.pushed_bytes += len(chunk)
            await self.push_frame(OutputAudioRawFrame(chunk, self.rate, 1))
            n += 1
