#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A small local voice server for trying the client: echo, answer with a tone, or record.

The server speaks either Pipecat's protobuf protocol (audio in the ``audio``
field, as ``ProtobufFrameSerializer`` writes it) or raw 16-bit mono PCM in
binary messages. Every connection gets its own state; several at once are
fine.

Modes:

* ``echo``: every message is sent back unchanged, ``delay`` seconds after it
  arrived (order kept, absolute schedule, no drift).
* ``tone``: the caller's audio is placed on a playback timeline as a far end
  would play it, utterance ends are detected on that timeline, and each one is
  answered with a sine tone starting ``latency`` seconds after it.
* ``record``: the caller's audio is written to a WAV file when the connection
  ends.

All times are seconds on the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

import numpy as np
import soxr
from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from pipecat_wsclient.cli.audio import (
    EndOfSpeechDetector,
    Track,
    float_to_pcm,
    pcm_to_float,
    write_wav,
)

Mode = Literal["echo", "tone", "record"]
"""What the server does with the caller's audio."""

WireProtocol = Literal["pipecat", "raw"]
"""How audio travels: Pipecat protobuf frames, or raw 16-bit PCM."""

MODES: tuple[str, ...] = get_args(Mode)
PROTOCOLS: tuple[str, ...] = get_args(WireProtocol)

CHUNK_SECS = 0.02
"""Answer tones are sent in chunks of this length, paced in real time."""

TONE_AMPLITUDE = 0.3
"""Peak amplitude of the answer tone (full scale is 1)."""

FADE_SECS = 0.01
"""Fade in and out of the answer tone, so it starts and ends without a click."""

DEFAULT_RECORD_PATH = "received.wav"
"""Where record mode writes when no path is given."""


@dataclass
class ServeOptions:
    """What the test server does and where it listens.

    Attributes:
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        path: Path shown in the server's URI (any path is accepted).
        mode: ``"echo"``, ``"tone"`` or ``"record"``.
        protocol: ``"pipecat"`` (protobuf frames) or ``"raw"`` (16-bit mono PCM).
        sample_rate: Rate of raw audio, of the answer tone and of recordings.
        delay: Echo: seconds each message is held before being sent back.
        latency: Tone: seconds from the end of each utterance to the start of its answer.
        tone_secs: Tone: length of each answer.
        tone_hz: Tone: frequency of each answer.
        record_path: Record: the WAV file written (and rewritten) when each
            connection ends; ``None`` means ``received.wav``.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/ws"
    mode: Mode = "echo"
    protocol: WireProtocol = "pipecat"
    sample_rate: int = 16000
    delay: float = 0.0
    latency: float = 0.3
    tone_secs: float = 0.6
    tone_hz: float = 440.0
    record_path: str | None = None

    def __post_init__(self) -> None:
        """Check the options.

        Raises:
            ValueError: If a mode, protocol or number is out of range.
        """
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {self.sample_rate}")
        for name in ("delay", "latency"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.tone_secs <= 0:
            raise ValueError(f"tone_secs must be positive, not {self.tone_secs}")
        if not 0 < self.tone_hz < self.sample_rate / 2:
            raise ValueError(f"tone_hz must be between 0 and {self.sample_rate / 2:g}")
        if not self.path.startswith("/"):
            self.path = "/" + self.path

    @property
    def record_file(self) -> Path:
        """The file record mode writes."""
        return Path(self.record_path or DEFAULT_RECORD_PATH)


def make_tone(secs: float, hz: float, rate: int, amplitude: float = TONE_AMPLITUDE) -> bytes:
    """A sine tone with a short linear fade in and out, as 16-bit PCM.

    Args:
        secs: Length.
        hz: Frequency.
        rate: Sample rate.
        amplitude: Peak amplitude (full scale is 1).

    Returns:
        The tone, 16-bit mono PCM at ``rate``.
    """
    n = max(1, round(secs * rate))
    t = np.arange(n, dtype=np.float64) / rate
    samples = amplitude * np.sin(2 * np.pi * hz * t)
    fade = min(int(FADE_SECS * rate), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        samples[:fade] *= ramp
        samples[n - fade :] *= ramp[::-1]
    return float_to_pcm(samples)


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """Sleep until ``when`` on the loop's clock (at once if it has passed)."""
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class VoiceServer:
    """A local WebSocket voice server for trying the client (see the module docs).

    Use it as an async context manager, or call ``start()`` and ``stop()``.
    The counters are shared by all connections and are there for tests.

    Attributes:
        options: What the server does.
        connections: Connections accepted so far.
        utterance_ends: Tone mode: end time of each utterance detected.
        answers_sent_at: Tone mode: when the first chunk of each answer was sent.
        received_bytes: Bytes of binary messages received so far.
    """

    def __init__(self, options: ServeOptions | None = None):
        """Initialize the server (it does not listen until ``start()``).

        Args:
            options: What to do and where to listen; defaults to ``ServeOptions()``.
        """
        self.options = options or ServeOptions()
        self.connections = 0
        self.utterance_ends: list[float] = []
        self.answers_sent_at: list[float] = []
        self.received_bytes = 0
        self._server: Server | None = None
        self._port = self.options.port
        self._serializer = ProtobufFrameSerializer()
        self._tone_chunks: list[bytes] = []

    @property
    def port(self) -> int:
        """The port listened on (the actual one once started, if 0 was asked)."""
        return self._port

    @property
    def uri(self) -> str:
        """Where clients connect, e.g. ``ws://127.0.0.1:8765/ws``."""
        return f"ws://{self.options.host}:{self._port}{self.options.path}"

    async def start(self) -> None:
        """Start listening.

        Raises:
            RuntimeError: If already started.
            OSError: If the address cannot be listened on.
        """
        if self._server is not None:
            raise RuntimeError("the server is already started")
        if self.options.mode == "tone":
            self._tone_chunks = await self._answer_chunks()
        self._server = await serve(
            self._handle,
            self.options.host,
            self.options.port,
            compression=None,
            max_size=None,
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]
        logger.debug(f"VoiceServer: {self.options.mode} on {self.uri}")

    async def stop(self) -> None:
        """Close all connections and stop listening (waits for connections to finish)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()

    async def __aenter__(self) -> VoiceServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def encode_audio(self, pcm: bytes) -> bytes:
        """Audio as this server's protocol sends it.

        Args:
            pcm: 16-bit mono PCM at the server's sample rate.

        Returns:
            The message: the PCM itself (raw), or a serialized ``OutputAudioRawFrame``.
        """
        if self.options.protocol == "raw":
            return pcm
        data = await self._serializer.serialize(
            OutputAudioRawFrame(pcm, self.options.sample_rate, 1)
        )
        assert isinstance(data, bytes)
        return data

    async def _answer_chunks(self) -> list[bytes]:
        """The answer tone, split into 20 ms messages ready to send."""
        o = self.options
        pcm = make_tone(o.tone_secs, o.tone_hz, o.sample_rate)
        step = 2 * round(CHUNK_SECS * o.sample_rate)
        return [await self.encode_audio(pcm[i : i + step]) for i in range(0, len(pcm), step)]

    async def _handle(self, ws: ServerConnection) -> None:
        """Serve one connection."""
        self.connections += 1
        peer = ws.remote_address
        path = ws.request.path if ws.request else "?"
        logger.debug(f"VoiceServer: connection from {peer} to {path}")
        try:
            await _Session(self, ws).run()
        except Exception:
            logger.exception(f"VoiceServer: connection from {peer} failed")
        logger.debug(f"VoiceServer: connection from {peer} ended")


class _Session:
    """The state of one connection."""

    def __init__(self, server: VoiceServer, ws: ServerConnection):
        self.server = server
        self.options = server.options
        self.ws = ws
        self.loop = asyncio.get_running_loop()
        self.tasks: list[asyncio.Task[None]] = []
        # Echo.
        self.echo_queue: asyncio.Queue[tuple[float, Data]] = asyncio.Queue()
        # Tone.
        self.track = Track(self.options.sample_rate)
        self.detector = EndOfSpeechDetector(self.options.sample_rate)
        self.answer_queue: asyncio.Queue[float] = asyncio.Queue()
        # Record.
        self.recorded = bytearray()
        # Decoding.
        self.odd_byte = b""
        self.resampler: soxr.ResampleStream | None = None
        self.resampler_rate = 0

    async def run(self) -> None:
        """Receive until the connection ends, then clean up."""
        mode = self.options.mode
        if mode == "echo":
            self.tasks.append(asyncio.create_task(self.echo_sender()))
        elif mode == "tone":
            self.tasks.append(asyncio.create_task(self.answer_sender()))
        try:
            async for message in self.ws:
                arrival = self.loop.time()
                if isinstance(message, bytes):
                    self.server.received_bytes += len(message)
                if mode == "echo":
                    self.echo_queue.put_nowait((arrival + self.options.delay, message))
                    continue
                pcm = await self.decode(message)
                if not pcm:
                    continue
                if mode == "tone":
                    self.hear(arrival, pcm)
                else:
                    self.recorded += pcm
        except ConnectionClosed:
            pass
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if mode == "record":
                self.recorded += self.flush()
                self.write_recording()

    async def decode(self, message: Data) -> bytes:
        """The caller's audio in a message, as 16-bit mono PCM at the server's rate."""
        if isinstance(message, str):
            logger.debug(f"VoiceServer: ignoring a text message ({len(message)} chars)")
            return b""
        if self.options.protocol == "raw":
            data = self.odd_byte + message
            whole = len(data) & ~1
            self.odd_byte = data[whole:]
            return data[:whole]
        try:
            frame = await self.server._serializer.deserialize(message)
        except Exception as e:
            logger.debug(f"VoiceServer: ignoring an undecodable message: {e}")
            return b""
        if not isinstance(frame, InputAudioRawFrame):
            logger.debug(f"VoiceServer: ignoring {type(frame).__name__}")
            return b""
        return self.normalize(frame.audio, frame.sample_rate, frame.num_channels)

    def normalize(self, pcm: bytes, rate: int, channels: int) -> bytes:
        """Bring audio to mono at the server's rate (streaming resampling when needed)."""
        rate = rate or self.options.sample_rate
        channels = max(1, channels)
        pcm = pcm[: len(pcm) // (2 * channels) * (2 * channels)]
        if channels == 1 and rate == self.options.sample_rate:
            return pcm
        samples = pcm_to_float(pcm)
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1).astype(np.float32)
        if rate != self.options.sample_rate:
            if self.resampler is None or self.resampler_rate != rate:
                logger.debug(f"VoiceServer: resampling {rate} Hz to {self.options.sample_rate} Hz")
                self.resampler = soxr.ResampleStream(rate, self.options.sample_rate, 1, "float32")
                self.resampler_rate = rate
            samples = self.resampler.resample_chunk(samples)
        return float_to_pcm(samples)

    def flush(self) -> bytes:
        """What the resampler still holds (its filter delay), if one was used."""
        if self.resampler is None:
            return b""
        return float_to_pcm(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))

    # Echo.

    async def echo_sender(self) -> None:
        """Send messages back, each at its arrival time plus the delay."""
        while True:
            due, message = await self.echo_queue.get()
            await _sleep_until(self.loop, due)
            try:
                await self.ws.send(message)
            except ConnectionClosed:
                return

    # Tone.

    def hear(self, arrival: float, pcm: bytes) -> None:
        """Place caller audio on the playback timeline and answer each utterance end."""
        playback = self.track.add(arrival, pcm)
        # Only the timeline's end matters here; don't keep the audio.
        self.track.chunks.clear()
        self.track.arrivals.clear()
        for end in self.detector.feed(pcm, playback):
            logger.debug(f"VoiceServer: utterance ended at {end:.3f}")
            self.server.utterance_ends.append(end)
            self.answer_queue.put_nowait(end)

    async def answer_sender(self) -> None:
        """Send one answer tone per utterance end, in turn, paced in real time."""
        chunks = self.server._tone_chunks
        while True:
            end = await self.answer_queue.get()
            start = max(end + self.options.latency, self.loop.time())
            for i, chunk in enumerate(chunks):
                await _sleep_until(self.loop, start + i * CHUNK_SECS)
                try:
                    await self.ws.send(chunk)
                except ConnectionClosed:
                    return
                if i == 0:
                    sent = self.loop.time()
                    self.server.answers_sent_at.append(sent)
                    logger.debug(
                        f"VoiceServer: answer started at {sent:.3f} "
                        f"({sent - end:.3f} s after the utterance)"
                    )

    # Record.

    def write_recording(self) -> None:
        """Write what was received to the record file (atomically) and say so."""
        path = self.options.record_file
        tmp = path.with_name(path.name + ".tmp")
        try:
            write_wav(tmp, bytes(self.recorded), self.options.sample_rate)
            os.replace(tmp, path)
        except OSError as e:
            logger.error(f"VoiceServer: cannot write {path}: {e}")
            return
        secs = len(self.recorded) / (2 * self.options.sample_rate)
        print(f"recorded {secs:.2f} s to {path}", flush=True)


async def run_server(options: ServeOptions) -> None:
    """Serve until cancelled, or until SIGINT or SIGTERM (then return normally).

    Prints ``Serving <mode> on <uri> (protocol <protocol>)`` once listening.

    Args:
        options: What to serve and where.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # Not the main thread, or not supported here: rely on cancellation.
        installed.append(sig)
    try:
        async with VoiceServer(options) as server:
            print(
                f"Serving {options.mode} on {server.uri} (protocol {options.protocol})",
                flush=True,
            )
            await stopping.wait()
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
