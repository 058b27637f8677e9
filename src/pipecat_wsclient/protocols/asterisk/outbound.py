#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The bot's audio toward Asterisk: encode, hold, release, pad the tail, flush, hang up.

:class:`AsteriskOutbound` is the half of
:class:`~pipecat_wsclient.protocols.asterisk.AsteriskSerializer` that sends:
it cuts the bot's audio into whole frames (:mod:`.codec`, the shared
:class:`~pipecat_wsclient.protocols.audio.Chunker`), asks
:class:`~pipecat_wsclient.protocols.asterisk.flow.FlowControl` what may go,
holds the rest and runs the task that releases it. Sources: ``docs/asterisk.md``.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Iterator
from typing import Any

from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame

from pipecat_wsclient.protocols.asterisk.codec import AsteriskCodec, split_messages
from pipecat_wsclient.protocols.asterisk.flow import FlowControl
from pipecat_wsclient.protocols.asterisk.stats import AsteriskStats
from pipecat_wsclient.protocols.audio import Chunker, Resampler
from pipecat_wsclient.protocols.base import CallSerializer
from pipecat_wsclient.throttle import LogThrottle


def _pcm_secs(frame: OutputAudioRawFrame) -> float:
    return len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)


class AsteriskOutbound(CallSerializer):
    """Sending the bot's audio to Asterisk in whole frames, within its flow control.

    The serializer sets the attributes below (:meth:`_reset_outbound` the
    per-stream ones) and implements :meth:`format_command`.
    """

    stats: AsteriskStats
    _codec: AsteriskCodec | None
    _media_buffering: bool
    _max_queued_frames: int | None
    _resume_queued_frames: int
    _max_held_secs: float | None
    _tail_flush_secs: float
    _end_timeout_secs: float
    _correlation: Iterator[int]
    _generation: int
    _unsupported: str | None
    _pre_start_log: LogThrottle

    @abstractmethod
    def format_command(self, name: str, **params: Any) -> str:
        """A command in the stream's control format."""

    def _reset_outbound(self) -> None:
        """A new stream: nothing held, sent or pending."""
        self._pre_start: deque[OutputAudioRawFrame] = deque()
        self._pre_start_secs = 0.0
        self._flow = FlowControl(
            max_queued_frames=self._max_queued_frames,
            resume_queued_frames=self._resume_queued_frames,
            max_held_secs=self._max_held_secs,
        )
        self._tail = Chunker()
        self._last_audio_at = 0.0
        self._bulk_open = False
        self._out_resampler = Resampler()

    @property
    def paused(self) -> bool:
        """Whether Asterisk has said ``MEDIA_XOFF`` and not ``MEDIA_XON`` yet."""
        return self._flow.paused

    @property
    def held_audio_secs(self) -> float:
        """Bot audio held right now (waiting for XON or queue room)."""
        return self._flow.held_secs

    def queued_frames_estimate(self, now: float | None = None) -> float:
        """Our estimate of Asterisk's queue: frames sent minus one played per ptime."""
        return self._flow.queued_frames(time.monotonic() if now is None else now)

    async def _serialize_audio(self, frame: OutputAudioRawFrame) -> list[str | bytes] | None:
        if self._ended:
            return None
        now = time.monotonic()
        if self._codec is None or self._pre_start:
            if self._unsupported is not None:
                return None
            # Before MEDIA_START we do not know the codec yet: keep the audio.
            self._keep_before_start(frame)
            self._last_audio_at = now
            return []
        generation = self._generation
        if self._media_buffering and not self._bulk_open:
            self._bulk_open = True
            start = self.format_command("START_MEDIA_BUFFERING")
            if self._flow.holding or self._io is None:
                self._enqueue(start)
            else:
                await self._io.send(start)
        messages = await self._encode(frame.audio, frame.sample_rate)
        if generation != self._generation:
            return None  # An interruption came while we were encoding this.
        self._last_audio_at = now = time.monotonic()
        if not messages:
            return []
        # From here on no awaits: what we return is written before anything
        # held can be released behind it.
        first = messages[0]
        if self._flow.holding or not self._flow.may_send(first, now):
            for message in messages:
                self._enqueue(message)
            return []
        for message in messages[1:]:
            self._enqueue(message)
        self._note_sent(first, now)
        return [first]

    def _note_sent(self, message: str | bytes, now: float) -> None:
        self._flow.note_sent(message, now)
        if isinstance(message, bytes):
            self.stats.audio_secs_sent += self._flow.secs(len(message))

    def _keep_before_start(self, frame: OutputAudioRawFrame) -> None:
        """Keep audio until MEDIA_START, the oldest dropped beyond ``max_held_secs``."""
        self._pre_start.append(frame)
        self._pre_start_secs += _pcm_secs(frame)
        limit = self._max_held_secs
        if limit is None:
            return
        dropped = 0.0
        while self._pre_start_secs > limit and len(self._pre_start) > 1:
            oldest = self._pre_start.popleft()
            secs = _pcm_secs(oldest)
            self._pre_start_secs -= secs
            dropped += secs
            self.stats.pre_start_dropped += 1
        if dropped:
            self.stats.dropped_audio_secs += dropped
            suppressed = self._pre_start_log.allow(time.monotonic())
            if suppressed is not None:
                logger.warning(
                    f"{self}: no MEDIA_START yet and more than {limit}s of audio kept for it: "
                    f"dropping the oldest ({self.stats.pre_start_dropped} frames so far"
                    + (f", {suppressed} more drops since the last report)" if suppressed else ")")
                )

    def _take_before_start(self) -> OutputAudioRawFrame:
        frame = self._pre_start.popleft()
        self._pre_start_secs -= _pcm_secs(frame)
        return frame

    async def _encode(self, pcm: bytes, sample_rate: int) -> list[str | bytes]:
        """PCM to whole frames in the codec, split to fit a message; keep the remainder."""
        codec = self._codec
        assert codec is not None
        pcm = await self._out_resampler.resample(pcm, sample_rate, codec.sample_rate)
        return self._frames_of(codec.encode(pcm))

    def _frames_of(self, data: bytes) -> list[str | bytes]:
        whole = self._tail.push(data, self._flow.frame_bytes)
        return list(split_messages(whole, self._flow.frame_bytes))

    def _enqueue(self, message: str | bytes) -> None:
        """Hold a message behind what is already held."""
        flow = self._flow
        dropped = flow.hold(message)
        if isinstance(message, bytes):
            peak = flow.secs(flow.held_bytes + dropped)
            self.stats.held_peak_secs = max(self.stats.held_peak_secs, peak)
        if dropped:
            self.stats.dropped_audio_secs += flow.secs(dropped)
            logger.warning(
                f"{self}: holding more than {self._max_held_secs}s of audio for Asterisk, "
                f"dropped the oldest {flow.secs(dropped):.2f}s"
            )

    async def _release_held(self, *, ignore_pause: bool = False) -> None:
        """Send held messages, in order, while Asterisk has room for them.

        Each message is taken off the queue and written without yielding in
        between, so concurrent releasers cannot reorder them.
        """
        while self._io is not None:
            message = self._flow.release(time.monotonic(), ignore_pause=ignore_pause)
            if message is None:
                return
            if not await self._io.send(message):
                if isinstance(message, bytes):  # Taken off the queue, not sent: count it.
                    self.stats.dropped_audio_secs += self._flow.secs(len(message))
                self._drop_held("the connection is gone")
                return
            if isinstance(message, bytes):
                self.stats.audio_secs_sent += self._flow.secs(len(message))

    def _flush_tail(self) -> None:
        """The bot went quiet: send the last partial frame, padded (and end the bulk)."""
        codec = self._codec
        if codec is None:
            return
        padded = self._tail.pad(self._flow.frame_bytes, codec.silence)
        if padded:
            self._enqueue(padded)
        if self._bulk_open:
            self._bulk_open = False
            correlation_id = f"pipecat-{next(self._correlation)}"
            self._enqueue(
                self.format_command("STOP_MEDIA_BUFFERING", correlation_id=correlation_id)
            )

    async def _flush_resampler(self) -> None:
        codec = self._codec
        if codec is None:
            return
        rest = await self._out_resampler.flush()
        if rest:
            for message in self._frames_of(codec.encode(rest)):
                self._enqueue(message)

    async def _run(self) -> None:
        """Release held audio as Asterisk's queue drains; flush the tails when quiet.

        The bot's partial last frame goes out padded after ``tail_flush_secs``
        without bot audio; the caller's audio the inbound resampler holds is
        delivered after :attr:`input_flush_secs` without media (Asterisk sends
        none while the caller is silent).
        """
        while True:
            if self._codec is not None and self._io is not None:
                tail = await self._flush_quiet_input(time.monotonic())
                if tail:
                    await self._io.deliver(InputAudioRawFrame(tail, self._pipeline_in_rate, 1))
            if self._codec is not None and not self._ended:
                quiet = time.monotonic() - self._last_audio_at >= self._tail_flush_secs
                if quiet and self._last_audio_at and not self._pre_start:
                    if len(self._tail) or self._bulk_open or self._out_resampler.pending:
                        await self._flush_resampler()
                        self._flush_tail()
                await self._release_held()
            await asyncio.sleep(self._flow.ptime)

    def _drop_held(self, why: str) -> None:
        dropped = self._flow.clear()
        if self._pre_start:
            self.stats.dropped_audio_secs += sum(_pcm_secs(f) for f in self._pre_start)
            self._pre_start.clear()
            self._pre_start_secs = 0.0
        if dropped:
            self.stats.dropped_audio_secs += self._flow.secs(dropped)
            logger.warning(f"{self}: {why}: dropped {self._flow.secs(dropped):.2f}s of held audio")

    # -- interruptions and the end ------------------------------------------------

    def _interrupt(self) -> str | None:
        self._generation += 1
        dropped = self._flow.held_bytes + len(self._tail)
        self.stats.interrupted_audio_secs += self._flow.secs(dropped)
        self._flow.clear()
        self._tail.clear()
        self.stats.interrupted_audio_secs += sum(_pcm_secs(f) for f in self._pre_start)
        self._pre_start.clear()
        self._pre_start_secs = 0.0
        # What the resampler still holds is from before the interruption too.
        self._out_resampler.reset()
        self._bulk_open = False  # FLUSH_MEDIA ends a bulk transfer [WS-DOC "FLUSH_MEDIA"]
        if self._codec is None or self._ended:
            return None
        self._flow.on_flush(time.monotonic())  # Asterisk drops its whole queue.
        self.stats.flushes += 1
        return self.format_command("FLUSH_MEDIA")

    async def _end(self) -> str | None:
        if self._ended:
            return None
        if self._codec is None:
            self._end_once()
            self._drop_held("the call ended before MEDIA_START")
            return self._hangup_text()
        loop_time = time.monotonic
        deadline = loop_time() + max(0.0, self._end_timeout_secs)
        await self._flush_resampler()
        self._flush_tail()
        self._ended = True
        # The input has stopped by now, so a MEDIA_XON could not reach us: our
        # estimate of Asterisk's queue decides when the rest may go.
        while self._flow.holding and self._io is not None and loop_time() < deadline:
            await self._release_held(ignore_pause=True)
            if self._flow.holding:
                await asyncio.sleep(self._flow.ptime)
        self._drop_held(f"hanging up after {self._end_timeout_secs}s")
        # Let the caller hear what Asterisk still queues before hanging up.
        wait = min(self._flow.playout_end, deadline) - loop_time()
        if wait > 0:
            await asyncio.sleep(wait)
        return self._hangup_text()

    def _cancel(self) -> str | None:
        if not self._end_once():
            return None
        self._drop_held("the call was cancelled")
        return self._hangup_text()

    def _hangup_text(self) -> str:
        # HANGUP hangs the channel up and closes the socket [WS-DOC "HANGUP"].
        return self.format_command("HANGUP")
