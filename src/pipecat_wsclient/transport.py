#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

""":class:`WebsocketClientTransport`: one connection, its input and its output, wired.

The transport owns one :class:`~pipecat_wsclient.session.WebsocketClientSession`
shared by its input (:mod:`pipecat_wsclient.input`) and output
(:mod:`pipecat_wsclient.output`), dials it when the pipeline starts, gives a
protocol that asks for it a :class:`~pipecat_wsclient.hooks.ProtocolIO`, and
turns the session's events into the transport's: a connection failure
becomes a fatal ``ErrorFrame`` and an ``on_connection_error`` event, so the
pipeline never runs on silently against a dead socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from loguru import logger
from pipecat.frames.frames import EndWorkerFrame, ErrorFrame, Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_transport import BaseTransport
from websockets.asyncio.client import ClientConnection

from pipecat_wsclient import hooks
from pipecat_wsclient.errors import ConnectionFailure, error_category
from pipecat_wsclient.input import MAX_PENDING_MESSAGES, WebsocketClientInputTransport
from pipecat_wsclient.output import WebsocketClientOutputTransport
from pipecat_wsclient.params import CANCEL_CLOSE_TIMEOUT_SECS, WebsocketClientParams
from pipecat_wsclient.retry import is_call_end
from pipecat_wsclient.session import WebsocketClientCallbacks, WebsocketClientSession
from pipecat_wsclient.stats import WebsocketClientStats


class TransportProtocolIO:
    """The transport's :class:`~pipecat_wsclient.hooks.ProtocolIO`: send, deliver, run tasks.

    Given to a serializer's ``attach(io)`` when the pipeline starts, for
    protocols with a life of their own, e.g. a carrier's playback clock that
    hands over the bot's audio in real time and echoes marks. Tasks created
    here are cancelled when the transport stops.
    """

    def __init__(
        self,
        transport: WebsocketClientTransport,
        session: WebsocketClientSession,
        input: WebsocketClientInputTransport,
    ):
        """Initialize the IO.

        Args:
            transport: The transport, which ends the call.
            session: The connection to send on.
            input: The processor that delivers frames into the pipeline.
        """
        self._transport = transport
        self._session = session
        self._input = input
        self._tasks: list[asyncio.Task] = []

    async def send(self, message: str | bytes) -> bool:
        """Send a message now; False if there is no open connection."""
        return await self._session.send(message)

    async def deliver(self, frame: Frame) -> None:
        """Push a frame into the pipeline as if it had been received."""
        await self._input.deliver(frame)

    async def end_call(self, reason: str) -> None:
        """The far end hung up: end the pipeline cleanly (no error)."""
        await self._transport.end_call(reason)

    def create_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run a coroutine until the transport stops."""
        task = self._input.create_task(coroutine, name)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        """Cancel the tasks and wait for them to end (the transport is stopping)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await self._input.cancel_task(task, timeout=CANCEL_CLOSE_TIMEOUT_SECS)


class WebsocketClientTransport(BaseTransport):
    """WebSocket client transport for bidirectional communication.

    Provides a complete WebSocket client transport implementation with input
    and output capabilities, connection management, and event handling. The
    input and output share one connection: it is dialed when the pipeline
    starts and closed (code 1000) when both have finished.

    Event handlers available:

    - on_connected(transport, websocket): Connected to WebSocket server
    - on_disconnected(transport, websocket): Disconnected from WebSocket server
      (``websocket.close_code`` and ``websocket.close_reason`` say how)
    - on_connection_error(transport, error): The connection could not be made,
      or was lost for good (not retried, or the reconnect policy gave up, or
      lost once the call was ending); ``error`` is a
      :class:`~pipecat_wsclient.errors.ConnectionFailure`. An ``ErrorFrame``
      with the same message is pushed upstream too: fatal, unless the call
      was already ending (an ``EndFrame`` on its way), which then goes on.
    - on_reconnecting(transport, attempt, delay, cause): The connection was
      lost (``cause``, a ``ConnectionFailure``); attempt number ``attempt``
      (from 1) follows in ``delay`` seconds. The pipeline keeps running.
    - on_reconnected(transport, attempt, downtime_secs): Connected again;
      audio held during the outage is being sent. ``on_connected`` fires only
      for the first connection.

    Example::

        @transport.event_handler("on_connected")
        async def on_connected(transport, websocket):
            ...

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            logger.error(f"call failed: {error}")
    """

    def __init__(
        self,
        uri: str,
        params: WebsocketClientParams | None = None,
    ):
        """Initialize the WebSocket client transport.

        Args:
            uri: The WebSocket URI to connect to.
            params: Optional configuration parameters for the transport.

        Raises:
            ValueError: If ``uri`` is not a valid ``ws://`` or ``wss://`` URI.
        """
        super().__init__()
        self._params = params or WebsocketClientParams()
        self._params.serializer = self._params.serializer or ProtobufFrameSerializer()
        callbacks = WebsocketClientCallbacks(
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_message=self._on_message,
            on_messages=self._on_messages,
            on_connection_lost=self._on_connection_lost,
            on_reconnecting=self._on_reconnecting,
            on_reconnected=self._on_reconnected,
            on_session_start=self._on_session_start,
        )
        self._session = WebsocketClientSession(uri, self._params, callbacks, self.name)
        self._input: WebsocketClientInputTransport | None = None
        self._output: WebsocketClientOutputTransport | None = None
        self._serializer_ready = False
        self._connect_task: asyncio.Task | None = None
        self._reporter: FrameProcessor | None = None
        self._ever_connected = False
        self._call_ended = False
        self._protocol_io: TransportProtocolIO | None = None

        self._register_event_handler("on_connected")
        self._register_event_handler("on_disconnected")
        self._register_event_handler("on_connection_error")
        self._register_event_handler("on_reconnecting")
        self._register_event_handler("on_reconnected")

    def input(self) -> WebsocketClientInputTransport:
        """Get the input transport for receiving frames.

        Returns:
            The WebSocket client input transport instance.
        """
        if not self._input:
            self._input = WebsocketClientInputTransport(self, self._session, self._params)
        return self._input

    def output(self) -> WebsocketClientOutputTransport:
        """Get the output transport for sending frames.

        Returns:
            The WebSocket client output transport instance.
        """
        if not self._output:
            self._output = WebsocketClientOutputTransport(self, self._session, self._params)
        return self._output

    @property
    def params(self) -> WebsocketClientParams:
        """The transport's parameters."""
        return self._params

    @property
    def serializer(self) -> FrameSerializer:
        """The frame serializer in use."""
        assert self._params.serializer is not None
        return self._params.serializer

    @property
    def session(self) -> WebsocketClientSession:
        """The WebSocket session shared by the input and output."""
        return self._session

    @property
    def stats(self) -> WebsocketClientStats:
        """A snapshot of the transport's counters (bytes, messages, audio, errors, RTT)."""
        return self._session.stats.snapshot()

    # -- used by the processors ----------------------------------------------

    async def _attach(self, processor: FrameProcessor, setup: FrameProcessorSetup):
        """Set up what ``processor`` shares with its sibling, and hold the connection."""
        await self._session.setup(setup.task_manager)
        if not self._serializer_ready:
            self._serializer_ready = True
            await self.serializer.setup(setup)
        self._session.acquire(processor)

    async def _attach_protocol(self, input: WebsocketClientInputTransport):
        """Give a protocol that needs it a way to send and deliver on its own."""
        attach = hooks.attach_hook(self.serializer)
        if attach is not None and self._protocol_io is None:
            self._protocol_io = TransportProtocolIO(self, self._session, input)
            await attach(self._protocol_io)

    async def _detach_protocol(self):
        if self._protocol_io is not None:
            await self._protocol_io.close()

    def _start_connecting(self, processor: FrameProcessor):
        """Dial in the background, once; failures are reported from ``processor``."""
        if self._reporter is None:
            self._reporter = processor
        if self._connect_task is None:
            self._connect_task = self._session.task_manager.create_task(
                self._connect_task_handler(), f"{self}::connect"
            )

    async def _release(self, processor: FrameProcessor, close_timeout: float | None = None):
        """Let go of the connection for ``processor``: stopping (EndFrame), or cancel/cleanup.

        ``close_timeout`` is None on stop: the input lets go as the ``EndFrame``
        passes it, and from then on the call is ending (no redial). Cancel and
        cleanup pass a short one and close within their bound, quietly.
        """
        if close_timeout is None:
            await self._session.call_ending()
        if self._session.is_last_holder(processor) and self._connect_task is not None:
            task, self._connect_task = self._connect_task, None
            if not task.done():
                await self._session.task_manager.cancel_task(task)
        await self._session.release(processor, close_timeout=close_timeout)

    async def _connect_task_handler(self):
        try:
            await self._session.connect()
        except ConnectionFailure as failure:
            await self._report_failure(failure)

    async def _report_failure(self, failure: ConnectionFailure):
        """Tell the application and the pipeline that the connection is unusable.

        The ``ErrorFrame`` is fatal (the worker cancels the pipeline), but when
        the call is already ending (an ``EndFrame`` on its way): the pipeline
        then ends as it was ending, and the audio still queued is counted as
        dropped instead of vanishing with a cancel.
        """
        await self._call_event_handler("on_connection_error", failure)
        processor = self._reporter
        if processor is None:
            logger.error(f"{self}: {failure}")
            return
        error = ErrorFrame(
            error=str(failure),
            exception=failure,
            processor=processor,
            category=error_category(failure),
        )
        if self._session.is_ending:
            await processor.push_error_frame(error)
            return
        # Set after construction, as Pipecat does, to avoid the deprecation
        # warning of the constructor flag: the worker cancels the pipeline.
        error.fatal = True
        await processor.push_error_frame(error, force_treat_as_permanent=True)

    # -- session callbacks ----------------------------------------------------

    async def _on_connected(self, websocket: ClientConnection):
        if not self._ever_connected:
            self._ever_connected = True
            await self._call_event_handler("on_connected", websocket)

    async def _on_reconnecting(self, attempt: int, delay: float, cause: ConnectionFailure):
        await self._call_event_handler("on_reconnecting", attempt, delay, cause)

    async def _on_reconnected(self, websocket: ClientConnection, attempt: int, downtime: float):
        await self._call_event_handler("on_reconnected", attempt, downtime)
        if self._output is not None:
            self._output.schedule_flush()

    async def _on_session_start(self) -> list[str | bytes]:
        messages: list[str | bytes] = []
        for provider in (
            hooks.session_start_hook(self.serializer),
            self._params.session_start_messages,
        ):
            if provider is not None:
                result = await hooks.call_maybe_async(provider)
                if not isinstance(result, list | tuple):
                    raise TypeError(
                        f"{type(result).__name__} instead of a list of str or bytes messages"
                    )
                messages.extend(result)
        return messages

    async def _on_disconnected(self, websocket: ClientConnection):
        await self._call_event_handler("on_disconnected", websocket)

    async def _on_connection_lost(self, failure: ConnectionFailure):
        if self._output is not None:
            self._output.abandon_outage()
        if is_call_end(failure):
            await self.end_call(failure.cause)
        else:
            await self._report_failure(failure)

    async def end_call(self, reason: str) -> None:
        """The far end ended the call: end the pipeline cleanly, once.

        Pushes an ``EndWorkerFrame`` upstream (Pipecat's way for a processor
        to end its pipeline), so queued frames are flushed and the pipeline
        stops without an error. Called when the server closes with 1000, and
        by protocols (``ProtocolIO.end_call``) on a hang-up event.

        Args:
            reason: Why, for the log and the frame's ``reason``.
        """
        if self._call_ended:
            return
        self._call_ended = True
        logger.info(f"{self}: the far end ended the call: {reason}")
        processor = self._reporter
        if processor is not None:
            await processor.push_frame(EndWorkerFrame(reason=reason), FrameDirection.UPSTREAM)

    async def _on_message(self, websocket: ClientConnection, message: str | bytes):
        if self._input:
            await self._input.on_message(websocket, message)

    async def _on_messages(self, websocket: ClientConnection, messages: list[str | bytes]):
        if self._input:
            await self._input.on_messages(websocket, messages)


ProtocolIO = TransportProtocolIO
"""The name this class had before :mod:`pipecat_wsclient.hooks` (kept for imports)."""

__all__ = [
    "CANCEL_CLOSE_TIMEOUT_SECS",
    "MAX_PENDING_MESSAGES",
    "TransportProtocolIO",
    "WebsocketClientInputTransport",
    "WebsocketClientOutputTransport",
    "WebsocketClientTransport",
]
