#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Pipecat's output media sender with a cheaper per-chunk path.

``BaseOutputTransport.MediaSender`` wraps two awaits per audio chunk in
``asyncio.wait_for``: taking the chunk from its queue and writing it to the
transport. On Python 3.11 each of them creates a task, a future and a timer,
and costs an extra turn of the event loop: about a tenth of the client's CPU
with many streams (see ``bench/profile.py``). :class:`LeanMediaSender` keeps
the same behaviour with lighter means:

- a chunk already queued is taken at once (``get_nowait``); only an empty
  queue waits, under ``asyncio.timeout`` instead of a new task;
- the write keeps its ``audio_out_write_timeout_secs`` bound and the same
  fatal error when it is crossed, under ``asyncio.timeout`` too; unless the
  transport bounds each send itself (``bounds_sends``: our
  ``write_timeout`` is set), which notices a peer that stopped reading and lets the
  reconnect policy act. Then the write is awaited directly, and a long
  write paced in real time (an end silence longer than the bound) is not cut.

Written audio is pushed downstream (to recorders such as an
``AudioBufferProcessor`` after ``transport.output()``) gathered into frames
of about ``downstream_secs`` rather than one per chunk: each frame pushed
costs every processor and observer after the transport a turn, and the
base class pushes one per 20-40 ms chunk. The same bytes go down in the
same order, once written, and nothing is held back once the queue runs
dry, before any other frame goes down (an interruption included), or at
``EndFrame``.

On ``EndFrame`` it also sends the last partial chunk (padded with silence
to a chunk, as the base class does on ``TTSStoppedFrame``) if the audio
before it is still playing at the far end when its turn comes; the base
class drops up to a chunk at the end of a stream without
``TTSStoppedFrame``. A tail that would play after a pause (the stream ended
long before the ``EndFrame``) is not sent late but counted as dropped
(``on_stale_tail``). The end silence that follows is marked
(:data:`END_SILENCE_KEY`): it is the transport's, not the bot's audio.

Everything else (chunking, resampling, bot speaking frames, mixer, filter,
volume, interruptions, end silence) is the base class's. The Pipecat code
this builds on is listed, with fingerprints, in :mod:`pipecat_wsclient.upstream`
(part ``sender``): with a Pipecat whose code differs, the output uses the
base class's sender instead (:func:`count_interruptions`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
)
from pipecat.transports import base_output
from pipecat.transports.base_output import BaseOutputTransport

# Seconds without audio after which the bot counts as stopped speaking.
BOT_VAD_STOP_FALLBACK_SECS: float = getattr(base_output, "BOT_VAD_STOP_FALLBACK_SECS", 3.0)


TAIL_KEY = "pipecat_wsclient.tail"
"""Metadata key of the chunks queued from what was left of the audio at ``EndFrame``."""

END_SILENCE_KEY = "pipecat_wsclient.end_silence"
"""Metadata key (True) of the end silence written after ``EndFrame``: the
transport's, not the bot's audio. Not sent, it is not dropped audio."""

SENT_KEY = "pipecat_wsclient.sent"
"""Metadata key of written audio pushed downstream: for each chunk in it, in
order, ``(time.monotonic() when it was written, its bytes)``, so that a
recorder can place gathered audio when each part went out, not when the
whole was pushed."""


def interruptible_audio_bytes(sender: BaseOutputTransport.MediaSender) -> int:
    """Bytes of interruptible audio a media sender holds, which an interruption discards.

    Pipecat's sender empties its queue and its partial-chunk buffer on
    ``InterruptionFrame``; that audio never reaches ``write_audio_frame``, so
    the output counts it here, just before, as interrupted. Reads the base
    class's ``_audio_queue`` and ``_audio_runs`` (0 if a later Pipecat
    renamed them; :mod:`pipecat_wsclient.upstream` lists them and CI checks them).

    Args:
        sender: Ours or the base class's.

    Returns:
        Audio bytes at the sender's output rate.
    """
    total = 0
    queue = getattr(getattr(sender, "_audio_queue", None), "_queue", ())
    for frame in queue:
        if isinstance(frame, OutputAudioRawFrame) and frame.interruptible:
            total += len(frame.audio)
    for audio, uninterruptible in getattr(sender, "_audio_runs", ()):
        if not uninterruptible:
            total += len(audio)
    return total


class InterruptionCounter:
    """Mixin for a media sender: reports the audio an interruption discards.

    Pipecat's sender empties its queue and its partial-chunk buffer on
    ``InterruptionFrame``; that audio never reaches ``write_audio_frame``. The
    count is taken with no await before the base class's reset, so nothing
    is counted twice or missed.

    Attributes:
        on_interrupted: Told the bytes of audio discarded, if set.
    """

    on_interrupted: Callable[[int], None] | None = None

    async def handle_interruptions(self, frame: InterruptionFrame):
        """Count the interruptible audio held, then let the base class discard it.

        Args:
            frame: The interruption.
        """
        if self.on_interrupted is not None:
            discarded = interruptible_audio_bytes(self)  # type: ignore[arg-type]
            if discarded:
                self.on_interrupted(discarded)
        await super().handle_interruptions(frame)  # type: ignore[misc]


class CountingMediaSender(InterruptionCounter, BaseOutputTransport.MediaSender):
    """The base class's sender as it is, counting what interruptions discard (the fallback)."""


def count_interruptions(sender: Any, on_interrupted: Callable[[int], None]) -> bool:
    """Make a sender that Pipecat created count what interruptions discard.

    The fallback when :class:`LeanMediaSender` does not fit the installed
    Pipecat: the base class creates its senders itself (whatever its
    ``set_transport_ready`` and the sender's constructor have become), then
    each becomes a :class:`CountingMediaSender`, which adds no state and
    only overrides ``handle_interruptions``.

    Args:
        sender: A sender from ``BaseOutputTransport._media_senders``.
        on_interrupted: Told the bytes of audio each interruption discards.

    Returns:
        Whether it counts now (False: not Pipecat's own sender class, left as is).
    """
    if type(sender) is not BaseOutputTransport.MediaSender:
        return False
    sender.__class__ = CountingMediaSender
    cast(CountingMediaSender, sender).on_interrupted = on_interrupted
    return True


class LeanMediaSender(InterruptionCounter, BaseOutputTransport.MediaSender):
    """``BaseOutputTransport.MediaSender`` without a task per chunk."""

    def __init__(
        self,
        *args: Any,
        bounds_sends: bool = False,
        downstream_secs: float = 0.0,
        until_dry: Callable[[], float] | None = None,
        on_stale_tail: Callable[[int], None] | None = None,
        **kwargs: Any,
    ):
        """Initialize the sender.

        Args:
            *args: As for ``BaseOutputTransport.MediaSender``.
            bounds_sends: Whether the transport bounds each send itself and
                treats a peer that stops reading as gone.
            downstream_secs: Written audio gathered into one frame pushed
                downstream; 0 pushes every chunk, as the base class does.
            until_dry: Seconds of the audio sent that the far end has not
                played yet. What was left of the audio at ``EndFrame`` is sent
                only while it is playing, and a partial chunk left when the
                queue runs dry goes out (padded) when the far end would run
                dry. None: always sent at ``EndFrame``, held otherwise (as the
                base class does).
            on_stale_tail: Told the bytes of audio (not padding) of each such
                chunk not sent because nothing was playing any more.
            **kwargs: As for ``BaseOutputTransport.MediaSender``.
        """
        super().__init__(*args, **kwargs)
        self._bounds_sends = bounds_sends
        self._until_dry = until_dry
        self._on_stale_tail = on_stale_tail
        self._flushing_tail = False
        self._writing_end_silence = False
        self._tail_bytes_left = 0
        self._downstream_bytes = (
            int(downstream_secs * self._sample_rate) * 2 * max(1, self._params.audio_out_channels)
        )
        self._gathered: list[OutputAudioRawFrame] = []
        self._gathered_bytes = 0
        self._gathered_sent: list[tuple[float, int]] = []

    async def stop(self, frame: EndFrame):
        """Queue what is left of the audio (marked as the tail), then stop as the base class does.

        Args:
            frame: The end frame.
        """
        # Audio bytes in the tail, so the padding is not counted if dropped
        # (what the resampler still holds, when resampling, is not counted).
        self._tail_bytes_left = self._buffered_audio_bytes
        self._flushing_tail = True
        try:
            await self._enqueue_flushed_audio_buffer()
        finally:
            self._flushing_tail = False
        await super().stop(frame)

    async def handle_sync_frame(self, frame: Frame):
        """Queue a frame in turn with the audio; a DTMF tone after the audio before it.

        The base class keeps up to a chunk of audio back until more comes, and
        writes a DTMF tone (``OutputDTMFFrame`` on a transport without native
        DTMF) as soon as its turn comes: the audio said before the tone was
        heard after it. That audio goes first now, padded, as on
        ``TTSStoppedFrame``.

        Args:
            frame: The frame to queue.
        """
        if isinstance(frame, OutputDTMFFrame) and self._buffered_audio_bytes:
            await self._enqueue_flushed_audio_buffer()
        await super().handle_sync_frame(frame)

    async def _enqueue_audio_chunk(self, audio: bytes, uninterruptible: bool):
        if not self._flushing_tail:
            await super()._enqueue_audio_chunk(audio, uninterruptible)
            return
        chunk = self._audio_buffer_cls(
            audio, sample_rate=self._sample_rate, num_channels=self._params.audio_out_channels
        )
        chunk.transport_destination = self._destination
        chunk.interruptible = not uninterruptible
        real = min(len(audio), self._tail_bytes_left)
        self._tail_bytes_left -= real
        chunk.metadata[TAIL_KEY] = real
        await self._audio_queue.put(chunk)

    async def _audio_task_handler(self):
        """The base class's audio loop, pushing written audio downstream gathered."""
        transport = self._transport
        async for frame in self._next_frame():
            if isinstance(frame, EndFrame):
                await self.push_gathered()
                # Some final silence so words don't cut out (EndFrame itself is
                # pushed by the transport's process_frame), marked as such.
                self._writing_end_silence = True
                try:
                    await self._send_silence(self._params.audio_out_end_silence_secs)
                finally:
                    self._writing_end_silence = False
                break
            if not isinstance(frame, OutputAudioRawFrame):
                await self._handle_frame(frame)
                await self.push_gathered()
                await transport.push_frame(frame)
                continue
            if not frame.audio:
                continue  # e.g. a filter buffering
            await self._handle_frame(frame)
            try:
                written = await self._internal_write_audio_frame(frame)
            except Exception as e:
                logger.error(f"{self} Error writing {frame} to transport: {e}")
                written = False
            if written:
                await self._gather(frame)

    async def _gather(self, frame: OutputAudioRawFrame):
        """Push a written chunk downstream, gathered with its neighbours."""
        if self._downstream_bytes <= 0:
            frame.metadata[SENT_KEY] = [(time.monotonic(), len(frame.audio))]
            await self._transport.push_frame(frame)
            return
        if self._gathered and not self._joins(self._gathered[-1], frame):
            await self.push_gathered()
        if not self._gathered:
            self._gathered_bytes = 0
        self._gathered.append(frame)
        self._gathered_sent.append((time.monotonic(), len(frame.audio)))
        self._gathered_bytes += len(frame.audio)
        # Nothing is held while the queue is empty (the end of a reply, an
        # interruption): recorders downstream get it now, not with the next reply.
        if self._gathered_bytes >= self._downstream_bytes or self._audio_queue.empty():
            await self.push_gathered()

    @staticmethod
    def _joins(a: OutputAudioRawFrame, b: OutputAudioRawFrame) -> bool:
        return (
            type(a) is type(b)
            and a.interruptible == b.interruptible
            and a.num_channels == b.num_channels
            and a.sample_rate == b.sample_rate
            and a.transport_destination == b.transport_destination
            and not a.metadata
            and not b.metadata
        )

    async def push_gathered(self):
        """Push the written audio gathered so far downstream now (e.g. before an interruption)."""
        gathered = self._gathered
        if not gathered:
            return
        if len(gathered) == 1:
            frame = gathered[0]
        else:
            first = gathered[0]
            frame = type(first)(
                b"".join(f.audio for f in gathered),
                sample_rate=first.sample_rate,
                num_channels=first.num_channels,
            )
            frame.transport_destination = first.transport_destination
            frame.interruptible = first.interruptible
        frame.metadata[SENT_KEY] = self._gathered_sent
        self._gathered = []
        self._gathered_sent = []
        await self._transport.push_frame(frame)

    def _next_frame(self) -> AsyncGenerator[Frame, None]:
        if self._mixer:
            return super()._next_frame()
        return self._frames_without_mixer(BOT_VAD_STOP_FALLBACK_SECS)

    async def _frames_without_mixer(self, vad_stop_secs: float) -> AsyncGenerator[Frame, None]:
        """The base class's frame loop, without a task per frame taken."""
        while True:
            queue = self._audio_queue
            try:
                if not queue.empty():
                    frame = queue.get_nowait()
                else:
                    next_frame = await self._next_or_partial(queue)
                    if next_frame is None:
                        async with asyncio.timeout(vad_stop_secs):
                            next_frame = await queue.get()
                    frame = next_frame
            except TimeoutError:
                # No audio for a while: the bot has stopped speaking.
                await self._bot_stopped_speaking()
                continue
            await self._filter_audio(frame)
            self._apply_volume(frame)
            yield frame
            queue.task_done()

    async def _next_or_partial(self, queue: Any) -> Frame | None:
        """With less than a chunk of audio left and nothing queued: send it when due.

        The base class holds such a remainder until more audio, a
        ``TTSStoppedFrame`` or ``EndFrame`` comes, and drops it uncounted
        after ``BOT_VAD_STOP_FALLBACK_SECS`` of silence: a source that does
        not send ``TTSStoppedFrame`` (raw audio, an echo) loses the end of
        each utterance or has it heard at the start of the next. Here, once
        the far end has played everything before it, the remainder goes out
        padded with silence (the far end is starving by then, so the padding
        takes no audio's place).

        Returns:
            The next frame, or None to wait for one as usual.
        """
        if self._until_dry is None or not self._buffered_audio_bytes:
            return None
        try:
            async with asyncio.timeout(self._until_dry()):
                # More audio in time: the chunking joins it to the remainder.
                return await queue.get()
        except TimeoutError:
            pass
        if self._buffered_audio_bytes:
            await self._enqueue_flushed_audio_buffer()
        return None if queue.empty() else queue.get_nowait()

    async def _internal_write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Write a chunk, bounded by the transport's sends or ``audio_out_write_timeout_secs``."""
        transport = self._transport
        if self._writing_end_silence:
            frame.metadata[END_SILENCE_KEY] = True
            channels = self._params.audio_out_channels
            if frame.num_channels != channels:
                # The base class makes it mono whatever the output: as long in every channel.
                frame.audio = bytes(len(frame.audio) * channels // frame.num_channels)
                frame.num_channels = channels
        if not transport.is_usable:
            await asyncio.sleep(0)  # as the base class's wait_for did: let others run
            return False
        tail = frame.metadata.get(TAIL_KEY)
        if tail is not None and self._until_dry is not None and self._until_dry() <= 0:
            # The stream ended long before the EndFrame: this bit would play
            # after a pause, as a click. Counted instead.
            if self._on_stale_tail is not None and tail:
                self._on_stale_tail(tail)
            return False
        if self._bounds_sends:
            written = await transport.write_audio_frame(frame)
            if not written:
                # A write that fails at once does not suspend: yield, as the
                # base class's wait_for did, so that the rest of the queue is
                # not run through before the connection's state catches up.
                await asyncio.sleep(0)
            return written
        timeout = self._params.audio_out_write_timeout_secs
        bound = asyncio.timeout(timeout)
        try:
            async with bound:
                return await transport.write_audio_frame(frame)
        except TimeoutError as e:
            if not bound.expired():
                raise
            await transport.push_error(
                f"{transport} timed out after {timeout}s writing audio to the "
                "transport; the peer has stopped reading",
                exception=e,
                force_treat_as_permanent=True,
            )
            return False
