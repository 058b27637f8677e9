#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``serve --mode bot``: an answering phone bot, built as Pipecat's telephony examples build one.

A FastAPI app served by uvicorn accepts the carrier's WebSocket at the
options' path; each call gets its own Pipecat pipeline, as in Pipecat's
Twilio, Telnyx, Plivo and Exotel examples: ``parse_telephony_websocket()``
reads the carrier's handshake (stream and call ids), Pipecat's own
serializer for that carrier (hang-up REST calls disabled: no network)
drives a ``FastAPIWebsocketTransport``, and the pipeline is::

    transport.input() -> VADProcessor(Silero) -> Answerer -> TTS -> transport.output()

(:mod:`pipecat_wsclient.serve.answerer`). The TTS service is the caller's
choice (``BotOptions.tts_factory``, one service per call): the command line
passes eSpeak NG, which lives above this package.

Example::

    options = BotOptions(protocol="twilio", port=0, tts_factory=lambda: MyTTSService())
    async with BotServer(options) as server:
        print(server.uri)  # ws://127.0.0.1:PORT/ws
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.tts_service import TTSService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient.caller.signals import stop_on_signals
from pipecat_wsclient.serve.answerer import Answerer, AnswerOptions
from pipecat_wsclient.serve.modes import BOT_PROTOCOLS

PIPELINE_RATE = 16000
"""The pipeline's audio rate; the carrier's serializer converts from and to its 8 kHz."""

SHUTDOWN_SECS = 3
"""On Ctrl-C, calls still open get this long to end before they are cut."""


def carrier_serializer(protocol: str, call_data: Any) -> FrameSerializer:
    """Pipecat's serializer for a carrier, as its runner builds it, without hang-up calls.

    Args:
        protocol: One of :data:`BOT_PROTOCOLS`.
        call_data: What ``parse_telephony_websocket()`` read from the handshake.

    Returns:
        The serializer.

    Raises:
        ValueError: For a protocol not in :data:`BOT_PROTOCOLS`.
    """
    if protocol == "twilio":
        return TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if protocol == "telnyx":
        return TelnyxFrameSerializer(
            stream_id=call_data["stream_id"],
            call_control_id=call_data["call_id"],
            outbound_encoding=call_data["outbound_encoding"],
            inbound_encoding="PCMU",
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if protocol == "plivo":
        return PlivoFrameSerializer(
            stream_id=call_data["stream_id"],
            call_id=call_data["call_id"],
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if protocol == "exotel":
        return ExotelFrameSerializer(
            stream_sid=call_data["stream_id"], call_sid=call_data["call_id"]
        )
    raise ValueError(f"the bot answers {', '.join(BOT_PROTOCOLS)}, not {protocol!r}")


@dataclass(kw_only=True)
class BotOptions:
    """What the answering bot says and where it listens.

    Parameters:
        tts_factory: Makes the TTS service of one call (called once per call).
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one.
        path: The WebSocket's path.
        protocol: The carrier: one of :data:`BOT_PROTOCOLS`.
        answer: What the bot says, when and how it listens.
    """

    tts_factory: Callable[[], TTSService]
    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/ws"
    protocol: str = "twilio"
    answer: AnswerOptions = field(default_factory=AnswerOptions)

    def __post_init__(self) -> None:
        """Check the options.

        Raises:
            ValueError: For a protocol the bot does not answer or a port out of range.
        """
        if self.protocol not in BOT_PROTOCOLS:
            raise ValueError(
                f"--mode bot answers {', '.join(BOT_PROTOCOLS)}, not {self.protocol!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if not self.path.startswith("/"):
            self.path = "/" + self.path


async def run_call(websocket: WebSocket, options: BotOptions) -> None:
    """Answer one call on an accepted WebSocket until the caller hangs up.

    Args:
        websocket: The carrier's connection, accepted.
        options: The bot's options.
    """
    detected, call_data = await parse_telephony_websocket(websocket)
    if detected != options.protocol:
        logger.warning(f"bot: a {detected!r} call to a {options.protocol} bot: hanging up")
        await websocket.close(code=1008, reason=f"this bot answers {options.protocol}")
        return
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=carrier_serializer(detected, call_data),
        ),
    )
    answer = options.answer
    vad = SileroVADAnalyzer(
        params=VADParams(start_secs=answer.start_secs, stop_secs=answer.stop_secs)
    )
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=vad),
            Answerer(answer),
            options.tts_factory(),
            transport.output(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=PIPELINE_RATE, audio_out_sample_rate=PIPELINE_RATE
        ),
        idle_timeout_secs=None,
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _websocket):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def create_app(options: BotOptions) -> FastAPI:
    """The bot's FastAPI app: one WebSocket route at ``options.path``, a call per connection.

    Args:
        options: The bot's options.

    Returns:
        The app, for uvicorn or any ASGI server.
    """
    app = FastAPI()

    @app.websocket(options.path)
    async def phone_call(websocket: WebSocket) -> None:
        await websocket.accept()
        peer = websocket.client
        logger.debug(f"bot: call from {peer}")
        try:
            await run_call(websocket, options)
        except Exception:
            logger.exception(f"bot: the call from {peer} failed")
        logger.debug(f"bot: call from {peer} ended")

    return app


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`run_bot` owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class BotServer:
    """The answering bot on a local port; use it as an async context manager.

    Attributes:
        options: What the bot says and where it listens.
    """

    def __init__(self, options: BotOptions):
        """Initialize the server (it does not listen until ``start()``).

        Args:
            options: The bot's options.
        """
        self.options = options
        self._port = options.port
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        """Where callers connect, e.g. ``ws://127.0.0.1:8765/ws``."""
        return f"ws://{self.options.host}:{self._port}{self.options.path}"

    async def start(self) -> None:
        """Start listening (returns once uvicorn accepts connections).

        Raises:
            RuntimeError: If already started, or if uvicorn ended while starting.
            OSError: If the address cannot be listened on.
        """
        if self._server is not None:
            raise RuntimeError("the bot is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.options.host, self.options.port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.options),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_SECS,
        )
        self._server = server = _Uvicorn(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._server = None
                await self._task
                raise RuntimeError("the bot's server ended while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening; calls still open get :data:`SHUTDOWN_SECS` to end."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task

    async def __aenter__(self) -> BotServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_bot(options: BotOptions) -> None:
    """Serve the bot until cancelled, or until SIGINT or SIGTERM (then return normally).

    Prints ``Serving bot on <uri> (protocol <protocol>)`` once listening.

    Args:
        options: The bot's options.
    """
    stopping = asyncio.Event()
    with stop_on_signals(stopping):
        async with BotServer(options) as server:
            print(f"Serving bot on {server.uri} (protocol {options.protocol})", flush=True)
            await stopping.wait()
