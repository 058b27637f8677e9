#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The carrier's side of a telephony media stream, for calling phone bots locally.

A phone bot built with Pipecat is a WebSocket server that a carrier (Twilio,
Telnyx, Plivo, Exotel, Vonage) dials into. A :class:`CarrierSerializer` lets
our client transport play that carrier: it sends the opening messages on
every (re)connection, frames the caller's audio in the carrier's codec and
chunking, plays the bot's audio on a simulated playback clock (handing it to
the pipeline in real time), echoes marks once the audio before them has
played and drops queued audio on a clear, sends DTMF and hangs up on
``EndFrame``, after the caller's last partial chunk (padded with silence)
and what the resampler still holds. The bot's audio that the resampler
holds when the bot goes quiet is flushed to the playback clock after
:attr:`~pipecat_wsclient.protocols.base.CallSerializer.input_flush_secs`.
Subclasses only describe the wire format; the JSON carriers share
:class:`~pipecat_wsclient.protocols.json_carrier.JsonCarrierSerializer`.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup

from pipecat_wsclient.hooks import Payload
from pipecat_wsclient.protocols.audio import (
    Chunker,
    Resampler,
    alaw_to_pcm,
    mulaw_to_pcm,
    pcm_to_alaw,
    pcm_to_mulaw,
    split,
)
from pipecat_wsclient.protocols.base import CallSerializer
from pipecat_wsclient.protocols.playback import PlaybackClock
from pipecat_wsclient.protocols.rules import Rules, Violation, Violations, rules_for

TICK_SECS = 0.01
"""How often at least the playback clock is advanced (sooner when audio or a mark is due)."""


@dataclass
class Media:
    """Bot audio, decoded to 16-bit PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int


@dataclass
class Mark:
    """A named mark the bot wants echoed once the audio before it has played."""

    name: str


@dataclass
class Clear:
    """The bot asks to drop the audio queued for playback (barge-in)."""


BotEvent = Media | Mark | Clear


class CarrierSerializer(CallSerializer):
    """Base of the carrier-side serializers: the playback clock and the plumbing.

    Subclasses implement :meth:`opening_messages`, :meth:`encode_audio`,
    :meth:`decode`, :meth:`mark_echo`, :meth:`dtmf_message` and
    :meth:`stop_message`. Frame ids, sequence numbers and timestamps restart
    on every connection (:meth:`reset_stream`), as a new carrier stream does.

    Example (any carrier, here Twilio)::

        WebsocketClientTransport(
            "ws://localhost:8765/ws",
            WebsocketClientParams(
                serializer=TwilioCarrierSerializer(custom_parameters={"user": "42"}),
                audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False,
            ),
        )
    """

    supports_native_dtmf = True
    """DTMF goes out as the carrier's event, not as tones."""

    task_name = "playback"

    carrier_name: str = ""
    """The carrier's ``--protocol`` name, whose rules the bot's messages are checked by."""

    def __init__(self, *, chunk_ms: int = 20):
        """Initialize the serializer.

        Args:
            chunk_ms: Caller audio goes out in chunks of this many milliseconds.
        """
        super().__init__()
        self._chunk_ms = chunk_ms
        self._clock = PlaybackClock(bytes_per_sec=2 * self._pipeline_in_rate)
        self._out_resampler = Resampler()
        self._out_chunks = Chunker()
        self._rules: Rules = Rules()
        self.violations = Violations()
        """The carrier's rules the bot broke, by kind, with the first example
        (:mod:`pipecat_wsclient.protocols.rules`), over the whole call."""
        self.on_bot_event: Callable[[Mark | Clear, float], None] | None = None
        """Called with each mark and clear the bot sends, and ``time.monotonic()``
        when it arrived (scripted calls time the bot's clear with it). It must
        not block; an exception from it is logged and ignored."""

    # -- what subclasses describe -------------------------------------------

    @property
    @abstractmethod
    def carrier_rate(self) -> int:
        """Sample rate of the carrier's audio."""

    @abstractmethod
    def opening_messages(self) -> list[str | bytes]:
        """Messages the carrier sends first on a new stream (connected, start...)."""

    @abstractmethod
    async def encode_audio(self, pcm: bytes) -> str | bytes:
        """One chunk of caller audio (``chunk_ms`` of PCM at ``carrier_rate``) as a message."""

    @abstractmethod
    async def decode(self, data: str | bytes) -> BotEvent | None:
        """Turn a message from the bot into an event (None for anything else)."""

    @abstractmethod
    def mark_echo(self, name: str) -> str | None:
        """The message telling the bot that a mark has played."""

    @abstractmethod
    def dtmf_message(self, digit: str) -> str | None:
        """The carrier's DTMF event for a key the caller pressed."""

    @abstractmethod
    def stop_message(self) -> str | None:
        """The carrier's message when the caller hangs up."""

    def cleared_message(self) -> str | None:
        """The acknowledgement of a clear, for carriers that send one."""
        return None

    def reset_stream(self) -> None:
        """Start a new stream: restart counters (called before the opening messages)."""

    def make_rules(self) -> Rules:
        """The rules the bot's messages are checked by on this stream (the carrier's)."""
        stream_id = str(getattr(self, str(getattr(self, "stream_attr", "")), "") or "")
        return rules_for(self.carrier_name, stream_id=stream_id, sample_rate=self.carrier_rate)

    def violation_reply(self, violation: Violation) -> str | None:
        """What the carrier sends back for a message that broke its rules (None: nothing)."""
        return None

    # -- FrameSerializer -----------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Take the pipeline's input rate for the bot's audio."""
        await super().setup(setup)
        self._clock = PlaybackClock(bytes_per_sec=2 * self._pipeline_in_rate)

    async def session_start_messages(self) -> list[str | bytes]:
        """The opening messages of a new stream, sent on every (re)connection."""
        self.reset_stream()
        self._out_chunks.clear()
        self._ended = False
        self._rules = self.make_rules()
        return self.opening_messages()

    async def serialize(self, frame: Frame) -> Payload:  # type: ignore[override]
        """Caller audio in the carrier's framing, DTMF events and the hang-up."""
        if isinstance(frame, OutputAudioRawFrame):
            return await self._encode_chunks(frame)
        if isinstance(frame, (OutputDTMFFrame, OutputDTMFUrgentFrame)):
            buttons = frame.buttons or ([frame.button] if frame.button else [])
            messages: list[str | bytes] = [
                m for m in (self.dtmf_message(str(b.value)) for b in buttons) if m is not None
            ]
            return messages or None
        if isinstance(frame, EndFrame):
            return await self._end() if self._end_once() else None
        if isinstance(frame, CancelFrame):
            return self.stop_message() if self._end_once() else None
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Queue the bot's audio and marks on the playback clock; act on clears.

        Returns None: the audio reaches the pipeline from the playback clock,
        in real time, once it is due.

        Raises:
            ValueError: If the message is not valid for the protocol.
        """
        await self._check_rules(data)
        event = await self.decode(data)
        if isinstance(event, (Mark, Clear)) and self.on_bot_event is not None:
            try:
                self.on_bot_event(event, time.monotonic())
            except Exception as e:
                logger.warning(f"{self}: on_bot_event raised {type(e).__name__}: {e}")
        if isinstance(event, Media):
            if len(event.pcm) % 2:
                raise ValueError(f"{len(event.pcm)} bytes of PCM is not whole 16-bit samples")
            if not event.pcm:
                return None
            limit = self._rules.max_queued_secs
            if limit is not None and self._clock.queued_secs > limit:
                # The carrier's buffer is full: it drops the message, so do we.
                await self._count([self._rules.overflow(self._clock.queued_secs)])
                return None
            pcm = await self._to_pipeline_rate(event.pcm, event.sample_rate)
            if pcm:
                self._clock.add_audio(pcm, time.monotonic())
        elif isinstance(event, Mark):
            self._clock.add_mark(event.name)
        elif isinstance(event, Clear):
            released = self._clock.clear()
            self._in_resampler.reset()  # What it holds is from before the clear too.
            await self._send_marks(released.marks)
            ack = self.cleared_message()
            if ack is not None and self._io is not None:
                await self._io.send(ack)
        return None

    async def _check_rules(self, data: str | bytes) -> None:
        """Count the carrier's rules ``data`` breaks; warn once a call; answer as it does."""
        found = self._rules.check(data)
        if found:
            await self._count(found)

    async def _count(self, found: list[Violation]) -> None:
        first = not self.violations.counts
        new = [v for v in found if v.kind not in self.violations.counts]
        self.violations.add(found)
        for i, v in enumerate(new):
            # One warning per call (the counts are in the report), the other kinds at debug.
            log = logger.warning if first and i == 0 else logger.debug
            code = f" ({self.carrier_name} {v.code})" if v.code else ""
            log(f"{self}: the bot broke {self.carrier_name}'s rules: {v.kind}{code}")
        reply = self.violation_reply(found[0])
        if reply is not None and self._io is not None:
            await self._io.send(reply)

    # -- playback ------------------------------------------------------------

    @property
    def playback(self) -> PlaybackClock:
        """The simulated playback buffer (for inspection)."""
        return self._clock

    async def _run(self) -> None:
        """Play the bot's audio in real time: deliver it when due, echo the marks.

        The clock keeps its own schedule; this loop only wakes when something
        is due (at least every :data:`TICK_SECS`, for new audio and the
        resampler's tail), so a frame or a mark goes out within the loop's
        wake-up delay of its time, and a late wake-up is not carried over.
        """
        assert self._io is not None
        rate = self._pipeline_in_rate
        while True:
            now = time.monotonic()
            tail = await self._flush_quiet_input(now)
            if tail:
                self._clock.add_audio(tail, now)
            released = self._clock.advance(now)
            for pcm in released.audio:
                await self._io.deliver(InputAudioRawFrame(pcm, rate, 1))
            await self._send_marks(released.marks)
            due = self._clock.next_due
            wait = TICK_SECS if due is None else due - time.monotonic()
            await asyncio.sleep(min(TICK_SECS, max(0.0, wait)))

    async def _send_marks(self, names: list[str]):
        if self._io is None:
            return
        for name in names:
            message = self.mark_echo(name)
            if message is not None:
                await self._io.send(message)

    @property
    def _chunk_bytes(self) -> int:
        return 2 * self.carrier_rate * self._chunk_ms // 1000

    async def _encode_chunks(self, frame: OutputAudioRawFrame) -> list[str | bytes] | None:
        pcm = await self._out_resampler.resample(frame.audio, frame.sample_rate, self.carrier_rate)
        size = self._chunk_bytes
        whole = self._out_chunks.push(pcm, size)
        messages = [await self.encode_audio(chunk) for chunk in split(whole, size)]
        return messages or None

    async def _end(self) -> Payload:
        """The caller's last audio (resampler tail, partial chunk padded), then the stop."""
        size = self._chunk_bytes
        whole = self._out_chunks.push(await self._out_resampler.flush(), size)
        chunks = split(whole, size)
        padded = self._out_chunks.pad(size, lambda n: bytes(n))  # PCM silence
        if padded:
            chunks.append(padded)
        messages: list[str | bytes] = [await self.encode_audio(chunk) for chunk in chunks]
        stop = self.stop_message()
        if not messages:
            return stop
        if stop is not None:
            messages.append(stop)
        return messages


def __getattr__(name: str) -> Any:
    # JsonMuLawStream moved to json_carrier.py (which imports this module).
    if name == "JsonMuLawStream":
        from pipecat_wsclient.protocols.json_carrier import JsonMuLawStream

        return JsonMuLawStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TICK_SECS",
    "BotEvent",
    "CarrierSerializer",
    "Clear",
    "Mark",
    "Media",
    "PlaybackClock",
    "alaw_to_pcm",
    "mulaw_to_pcm",
    "pcm_to_alaw",
    "pcm_to_mulaw",
]
