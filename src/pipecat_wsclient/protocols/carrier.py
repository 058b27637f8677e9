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
``EndFrame``. Subclasses only describe the wire format.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from abc import abstractmethod
from dataclasses import dataclass

from pipecat.audio.utils import audioop, create_stream_resampler
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
from pipecat.serializers.base_serializer import FrameSerializer

from pipecat_wsclient.protocols.playback import PlaybackClock

TICK_SECS = 0.01
"""How often the playback clock is advanced."""


def pcm_to_mulaw(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 mu-law (same rate), with the codec Pipecat uses."""
    return audioop.lin2ulaw(pcm, 2)


def mulaw_to_pcm(data: bytes) -> bytes:
    """G.711 mu-law to 16-bit PCM (same rate)."""
    return audioop.ulaw2lin(data, 2)


def pcm_to_alaw(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 A-law (same rate)."""
    return audioop.lin2alaw(pcm, 2)


def alaw_to_pcm(data: bytes) -> bytes:
    """G.711 A-law to 16-bit PCM (same rate)."""
    return audioop.alaw2lin(data, 2)


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


class CarrierSerializer(FrameSerializer):
    """Base of the carrier-side serializers: the playback clock and the plumbing.

    Subclasses implement :meth:`opening_messages`, :meth:`encode_audio`,
    :meth:`decode`, :meth:`mark_echo`, :meth:`dtmf_message` and
    :meth:`stop_message`. Frame ids, sequence numbers and timestamps restart
    on every connection (:meth:`reset_stream`), as a new carrier stream does.
    """

    supports_native_dtmf = True
    """DTMF goes out as the carrier's event, not as tones."""

    def __init__(self, *, chunk_ms: int = 20):
        """Initialize the serializer.

        Args:
            chunk_ms: Caller audio goes out in chunks of this many milliseconds.
        """
        super().__init__()
        self._chunk_ms = chunk_ms
        self._pipeline_in_rate = 16000
        self._clock = PlaybackClock(bytes_per_sec=2 * self._pipeline_in_rate)
        self._out_resampler = create_stream_resampler()
        self._in_resampler = create_stream_resampler()
        self._pending_out = b""
        self._io = None
        self._ended = False

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

    # -- FrameSerializer -----------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Take the pipeline's input rate for the bot's audio."""
        self._pipeline_in_rate = setup.audio_in_sample_rate
        self._clock = PlaybackClock(bytes_per_sec=2 * self._pipeline_in_rate)

    async def session_start_messages(self) -> list[str | bytes]:
        """The opening messages of a new stream, sent on every (re)connection."""
        self.reset_stream()
        self._pending_out = b""
        self._ended = False
        return self.opening_messages()

    async def serialize(self, frame: Frame) -> str | bytes | list[str | bytes] | None:  # type: ignore[override]
        """Caller audio in the carrier's framing, DTMF events and the hang-up."""
        if isinstance(frame, OutputAudioRawFrame):
            return await self._encode_chunks(frame)
        if isinstance(frame, (OutputDTMFFrame, OutputDTMFUrgentFrame)):
            buttons = frame.buttons or ([frame.button] if frame.button else [])
            messages: list[str | bytes] = [
                m for m in (self.dtmf_message(str(b.value)) for b in buttons) if m is not None
            ]
            return messages or None
        if isinstance(frame, (EndFrame, CancelFrame)):
            if self._ended:
                return None
            self._ended = True
            return self.stop_message()
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
        event = await self.decode(data)
        if isinstance(event, Media):
            pcm = event.pcm
            if event.sample_rate != self._pipeline_in_rate:
                pcm = await self._in_resampler.resample(
                    pcm, event.sample_rate, self._pipeline_in_rate
                )
            self._clock.add_audio(pcm, time.monotonic())
        elif isinstance(event, Mark):
            self._clock.add_mark(event.name)
        elif isinstance(event, Clear):
            released = self._clock.clear()
            await self._send_marks(released.marks)
            ack = self.cleared_message()
            if ack is not None and self._io is not None:
                await self._io.send(ack)
        return None

    # -- playback ------------------------------------------------------------

    async def attach(self, io) -> None:
        """Start playing the bot's audio in real time (called by the transport)."""
        self._io = io
        io.create_task(self._play(), f"{self}::playback")

    @property
    def playback(self) -> PlaybackClock:
        """The simulated playback buffer (for inspection)."""
        return self._clock

    async def _play(self):
        assert self._io is not None
        rate = self._pipeline_in_rate
        while True:
            released = self._clock.advance(time.monotonic())
            for pcm in released.audio:
                await self._io.deliver(InputAudioRawFrame(pcm, rate, 1))
            await self._send_marks(released.marks)
            await asyncio.sleep(TICK_SECS)

    async def _send_marks(self, names: list[str]):
        if self._io is None:
            return
        for name in names:
            message = self.mark_echo(name)
            if message is not None:
                await self._io.send(message)

    async def _encode_chunks(self, frame: OutputAudioRawFrame) -> list[str | bytes] | None:
        pcm = frame.audio
        if frame.sample_rate != self.carrier_rate:
            pcm = await self._out_resampler.resample(pcm, frame.sample_rate, self.carrier_rate)
        data = self._pending_out + pcm
        size = 2 * self.carrier_rate * self._chunk_ms // 1000
        whole = len(data) // size * size
        self._pending_out = data[whole:]
        messages = [await self.encode_audio(data[i : i + size]) for i in range(0, whole, size)]
        return messages or None


class JsonMuLawStream(CarrierSerializer):
    """Twilio-style JSON media streams (Twilio, Telnyx): base64 mu-law 8 kHz in ``media``.

    Shares what those carriers have in common: numbered messages, ``media``
    with ``track``, ``chunk`` and ``timestamp`` (ms), ``mark`` echoes, and
    ``media``/``mark``/``clear`` from the bot. Subclasses name the fields
    around them (:meth:`_message`) and the opening, DTMF and stop messages.
    """

    def __init__(self):
        """Initialize the stream counters."""
        super().__init__(chunk_ms=20)
        self._sequence = 0
        self._chunk = 0

    @property
    def carrier_rate(self) -> int:
        """These carriers stream 8 kHz."""
        return 8000

    def reset_stream(self) -> None:
        """Sequence numbers and chunks start over on a new stream."""
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    @abstractmethod
    def _message(self, event: str, **fields) -> str:
        """A numbered message of the carrier, as JSON text."""

    async def encode_audio(self, pcm: bytes) -> str | bytes:
        """A ``media`` message: 20 ms of mu-law, with chunk number and timestamp."""
        self._chunk += 1
        return self._message(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(pcm_to_mulaw(pcm)).decode(),
            },
        )

    async def decode(self, data: str | bytes) -> BotEvent | None:
        """``media``, ``mark`` and ``clear`` from the bot."""
        message = json.loads(data)
        event = message.get("event")
        if event == "media":
            payload = base64.b64decode(message["media"]["payload"])
            return Media(mulaw_to_pcm(payload), 8000)
        if event == "mark":
            return Mark(str(message.get("mark", {}).get("name", "")))
        if event == "clear":
            return Clear()
        return None

    def mark_echo(self, name: str) -> str | None:
        """The ``mark`` event: the audio before the mark has played."""
        return self._message("mark", mark={"name": name})
