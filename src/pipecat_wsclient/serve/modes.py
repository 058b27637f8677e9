#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the test server does with one connection: one small class per mode.

:class:`Session` receives (counting bytes) and sends (one place, which
stops quietly once the connection has closed); each mode says what to do
with a message and at the end. :data:`MODES` maps ``--mode`` names to them.
To add a mode, subclass :class:`Session` (or :class:`AudioSession` to get
the caller's audio decoded) and register it there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from pipecat_wsclient.audio.levels import EndOfSpeechDetector
from pipecat_wsclient.audio.track import Track
from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.protocols.registry import get_protocol
from pipecat_wsclient.serve.audio import InboundAudio, make_tone

if TYPE_CHECKING:
    from pipecat_wsclient.serve.server import VoiceServer

CHUNK_SECS = 0.02

MAX_ECHO_BYTES = 1 << 20
"""Most of a connection's messages held for echoing (1 MiB, about 30 s of 16 kHz
audio): a client that sends and never reads gets the rest dropped, counted."""

MAX_RECORD_SECS = 3600.0
"""Most audio one connection of ``--mode record`` keeps (an hour); the rest is dropped."""
"""Answer tones are sent in chunks of this length, paced in real time."""


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """Sleep until ``when`` on the loop's clock (at once if it has passed)."""
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class Session:
    """One connection: receive until it ends, with background senders.

    Subclasses implement :meth:`on_message`, and may add :meth:`senders`
    (run while the connection lasts), :meth:`on_end` and :meth:`prepare`.
    """

    help: ClassVar[str] = ""
    """What the mode does, in one line."""

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        """Initialize the session.

        Args:
            server: The server (its options and shared counters).
            ws: The connection.
        """
        self.server = server
        self.options = server.options
        self.ws = ws
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def prepare(cls, server: VoiceServer) -> None:
        """Prepare what all of a server's connections share (once, when it starts)."""

    async def run(self) -> None:
        """Receive until the connection ends, then stop the senders and finish."""
        tasks = [asyncio.create_task(sender) for sender in self.senders()]
        try:
            async for message in self.ws:
                arrival = self.loop.time()
                if isinstance(message, bytes):
                    self.server.received_bytes += len(message)
                await self.on_message(arrival, message)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.on_end()

    def senders(self) -> list[Coroutine[Any, Any, None]]:
        """Coroutines to run while the connection lasts (none by default)."""
        return []

    async def on_message(self, arrival: float, message: Data) -> None:
        """Handle one message, received at ``arrival`` (the loop's clock)."""
        raise NotImplementedError

    async def on_end(self) -> None:
        """Finish once the connection has ended (nothing by default)."""

    async def send(self, message: Data) -> bool:
        """Send one message; ``False`` once the connection has closed."""
        try:
            await self.ws.send(message)
        except ConnectionClosed:
            return False
        return True


class EchoSession(Session):
    """Send every message back unchanged, ``delay`` seconds after it arrived."""

    help = "send back what arrives"

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        super().__init__(server, ws)
        self._queue: asyncio.Queue[tuple[float, Data]] = asyncio.Queue()
        self._held = 0  # bytes queued
        self.dropped = 0
        """Messages not echoed: the client sent them faster than it read (beyond MAX_ECHO_BYTES)."""

    def senders(self) -> list[Coroutine[Any, Any, None]]:
        """The echo sender."""
        return [self._echo()]

    async def on_message(self, arrival: float, message: Data) -> None:
        """Queue the message to go back at its arrival time plus the delay (bounded)."""
        if self._held + len(message) > MAX_ECHO_BYTES:
            if not self.dropped:
                logger.warning(
                    "VoiceServer: a client sends faster than it reads; dropping its echo "
                    f"beyond {MAX_ECHO_BYTES} bytes held"
                )
            self.dropped += 1
            return
        self._held += len(message)
        self._queue.put_nowait((arrival + self.options.delay, message))

    async def _echo(self) -> None:
        """Send messages back, each at its arrival time plus the delay (order kept)."""
        while True:
            due, message = await self._queue.get()
            self._held -= len(message)
            await _sleep_until(self.loop, due)
            if not await self.send(message):
                return


class AudioSession(Session):
    """A session that wants the caller's audio: messages are decoded for :meth:`on_audio`."""

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        super().__init__(server, ws)
        rate = self.options.sample_rate
        self.inbound = InboundAudio(get_protocol(self.options.protocol).serializer(rate), rate)

    async def on_message(self, arrival: float, message: Data) -> None:
        """Decode the message; pass its audio, if any, to :meth:`on_audio`."""
        pcm = await self.inbound.decode(message)
        if pcm:
            self.on_audio(arrival, pcm)

    def on_audio(self, arrival: float, pcm: bytes) -> None:
        """Handle the caller's audio: 16-bit mono PCM at the server's rate."""
        raise NotImplementedError


class ToneSession(AudioSession):
    """Answer each end of an utterance with a tone, ``latency`` seconds after it.

    The caller's audio is placed on a playback timeline as a far end would
    play it, and utterance ends are detected on that timeline. Answers go out
    in turn, paced in real time.
    """

    help = "answer each utterance with a tone"

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        super().__init__(server, ws)
        self._track = Track(self.options.sample_rate)
        self._detector = EndOfSpeechDetector(self.options.sample_rate)
        self._answers: asyncio.Queue[float] = asyncio.Queue()

    @classmethod
    async def prepare(cls, server: VoiceServer) -> None:
        """Encode the answer tone once, as 20 ms messages ready to send."""
        o = server.options
        pcm = make_tone(o.tone_secs, o.tone_hz, o.sample_rate)
        step = 2 * round(CHUNK_SECS * o.sample_rate)
        server.tone_chunks = [
            await server.encode_audio(pcm[i : i + step]) for i in range(0, len(pcm), step)
        ]

    def senders(self) -> list[Coroutine[Any, Any, None]]:
        """The answer sender."""
        return [self._answer()]

    def on_audio(self, arrival: float, pcm: bytes) -> None:
        """Place caller audio on the playback timeline and answer each utterance end."""
        playback = self._track.add(arrival, pcm)
        # Only the timeline's end matters here; don't keep the audio.
        self._track.chunks.clear()
        self._track.arrivals.clear()
        for end in self._detector.feed(pcm, playback):
            logger.debug(f"VoiceServer: utterance ended at {end:.3f}")
            self.server.keep_timing(self.server.utterance_ends, end)
            self._answers.put_nowait(end)

    async def _answer(self) -> None:
        """Send one answer tone per utterance end, in turn, paced in real time."""
        chunks = self.server.tone_chunks
        while True:
            end = await self._answers.get()
            start = max(end + self.options.latency, self.loop.time())
            for i, chunk in enumerate(chunks):
                await _sleep_until(self.loop, start + i * CHUNK_SECS)
                if not await self.send(chunk):
                    return
                if i == 0:
                    sent = self.loop.time()
                    self.server.keep_timing(self.server.answers_sent_at, sent)
                    logger.debug(
                        f"VoiceServer: answer started at {sent:.3f} "
                        f"({sent - end:.3f} s after the utterance)"
                    )


class RecordSession(AudioSession):
    """Write the caller's audio to the record file when the connection ends."""

    help = "write what arrives to a WAV"

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        super().__init__(server, ws)
        self._recorded = bytearray()

    def on_audio(self, arrival: float, pcm: bytes) -> None:
        """Keep the audio (up to :data:`MAX_RECORD_SECS`)."""
        room = int(2 * self.options.sample_rate * MAX_RECORD_SECS) - len(self._recorded)
        self._recorded += pcm[: max(0, room)]

    async def on_end(self) -> None:
        """Write what was received to the record file (atomically) and say so."""
        self._recorded += self.inbound.flush()
        path = self.options.record_file
        tmp = path.with_name(path.name + ".tmp")
        try:
            write_wav(tmp, bytes(self._recorded), self.options.sample_rate)
            os.replace(tmp, path)
        except OSError as e:
            logger.error(f"VoiceServer: cannot write {path}: {e}")
            return
        secs = len(self._recorded) / (2 * self.options.sample_rate)
        print(f"recorded {secs:.2f} s to {path}", flush=True)


MODES: dict[str, type[Session]] = {
    "echo": EchoSession,
    "tone": ToneSession,
    "record": RecordSession,
}
"""The server's modes by ``--mode`` name."""

BOT_MODE = "bot"
BOT_PROTOCOLS = ("twilio", "telnyx", "plivo", "exotel")
"""The carriers ``serve --mode bot`` answers (those ``parse_telephony_websocket`` detects)."""
"""``--mode bot``: not a :class:`Session` but a Pipecat pipeline per call
(:mod:`pipecat_wsclient.serve.bot`), on a carrier's protocol."""

MODE_HELP: dict[str, str] = {
    **{name: session.help for name, session in MODES.items()},
    BOT_MODE: "answer like a Pipecat phone bot (Silero VAD, eSpeak NG; a carrier protocol)",
}
"""Every ``--mode`` of ``serve`` with what it does, in one line each."""
