#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A small local voice server for trying the client: echo, answer with a tone, or record.

The server speaks the protocols the registry marks as served
(:mod:`pipecat_wsclient.protocols.registry`): Pipecat's protobuf frames, or raw
16-bit mono PCM in binary messages, decoded and encoded with their
serializers. Every connection gets its own state (a session of its mode,
:mod:`pipecat_wsclient.serve.modes`); several at once are fine.

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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from loguru import logger
from pipecat.frames.frames import OutputAudioRawFrame
from websockets.asyncio.server import Server, ServerConnection, serve

from pipecat_wsclient.caller.signals import stop_on_signals
from pipecat_wsclient.protocols.registry import get_protocol, protocol_names
from pipecat_wsclient.serve.audio import make_tone
from pipecat_wsclient.serve.modes import MODES

__all__ = ["MODES", "ServeOptions", "VoiceServer", "make_tone", "run_server"]

DEFAULT_RECORD_PATH = "received.wav"

MAX_TIMINGS = 1000

MAX_MESSAGE_BYTES = 1 << 20
"""Largest message a client may send (1 MiB); a bigger one closes the connection with 1009."""
"""Tone mode keeps the last this many utterance ends and answer starts (a long load run)."""
"""Where record mode writes when no path is given."""


@dataclass
class ServeOptions:
    """What the test server does and where it listens.

    Attributes:
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        path: Path shown in the server's URI (any path is accepted).
        mode: A key of :data:`~pipecat_wsclient.serve.modes.MODES`:
            ``"echo"``, ``"tone"`` or ``"record"``.
        protocol: A protocol the registry marks as served: ``"pipecat"``
            (protobuf frames) or ``"raw"`` (16-bit mono PCM).
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
    mode: str = "echo"
    protocol: str = "pipecat"
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
        served = protocol_names(served=True)
        if self.protocol not in served:
            raise ValueError(f"protocol must be one of {', '.join(served)}, not {self.protocol!r}")
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


class VoiceServer:
    """A local WebSocket voice server for trying the client (see the module docs).

    Use it as an async context manager, or call ``start()`` and ``stop()``.
    The counters are shared by all connections and are there for tests.

    Attributes:
        options: What the server does.
        connections: Connections accepted so far.
        utterance_ends: Tone mode: end time of each utterance detected (the last
            :data:`MAX_TIMINGS`).
        answers_sent_at: Tone mode: when the first chunk of each answer was sent (the
            last :data:`MAX_TIMINGS`).
        received_bytes: Bytes of binary messages received so far.
        tone_chunks: Tone mode: the answer tone, as 20 ms messages ready to send.
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
        self.tone_chunks: list[bytes] = []
        self._server: Server | None = None
        self._port = self.options.port
        self._session_class = MODES[self.options.mode]
        self._serializer = get_protocol(self.options.protocol).serializer(self.options.sample_rate)

    @staticmethod
    def keep_timing(timings: list[float], value: float) -> None:
        """Append ``value`` to one of the timing lists, keeping the last :data:`MAX_TIMINGS`."""
        timings.append(value)
        del timings[:-MAX_TIMINGS]

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
        await self._session_class.prepare(self)
        self._server = await serve(
            self._handle,
            self.options.host,
            self.options.port,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            # Only clients that send no Origin (not a web page in the user's
            # browser, which always does): a page cannot reach the bot.
            origins=[None],
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
            The message: a serialized ``OutputAudioRawFrame`` (for raw, the PCM itself).
        """
        data = await self._serializer.serialize(
            OutputAudioRawFrame(pcm, self.options.sample_rate, 1)
        )
        assert isinstance(data, bytes)
        return data

    async def _handle(self, ws: ServerConnection) -> None:
        """Serve one connection."""
        self.connections += 1
        peer = ws.remote_address
        path = ws.request.path if ws.request else "?"
        logger.debug(f"VoiceServer: connection from {peer} to {path}")
        try:
            await self._session_class(self, ws).run()
        except Exception:
            logger.exception(f"VoiceServer: connection from {peer} failed")
        logger.debug(f"VoiceServer: connection from {peer} ended")


async def run_server(options: ServeOptions) -> None:
    """Serve until cancelled, or until SIGINT or SIGTERM (then return normally).

    Prints ``Serving <mode> on <uri> (protocol <protocol>)`` once listening.

    Args:
        options: What to serve and where.
    """
    stopping = asyncio.Event()
    with stop_on_signals(stopping):
        async with VoiceServer(options) as server:
            print(
                f"Serving {options.mode} on {server.uri} (protocol {options.protocol})",
                flush=True,
            )
            await stopping.wait()
