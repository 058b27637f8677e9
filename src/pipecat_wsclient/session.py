#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The WebSocket connection of a transport: the one module that talks to ``websockets``.

A :class:`WebsocketClientSession` dials, receives, sends and closes. It maps
every exception of ``websockets`` and of the OS onto a
:class:`~pipecat_wsclient.errors.ConnectionFailure` that names the (redacted)
URI and the cause, and reports a lost connection through its callbacks
instead of leaving a dead socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from loguru import logger
from pipecat.utils.asyncio.task_manager import BaseTaskManager
from pydantic import BaseModel, ConfigDict
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from pipecat_wsclient.coalesce import MAX_BATCH_MESSAGES
from pipecat_wsclient.connection_state import ConnectionState, SessionState
from pipecat_wsclient.dial import Dialer
from pipecat_wsclient.errors import ConnectionFailure, FailureKind, redact_uri
from pipecat_wsclient.failures import CLOSE_NORMAL, failure_from_exception
from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.reconnect import Reconnected, give_up_failure, redial
from pipecat_wsclient.retry import ReconnectPolicy, is_call_end
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER

__all__ = [
    "WEBSOCKETS_LOGGER",
    "SessionState",
    "WebsocketClientCallbacks",
    "WebsocketClientSession",
    "failure_from_exception",
]


class WebsocketClientCallbacks(BaseModel):
    """Callback functions for WebSocket client events.

    Parameters:
        on_connected: Called when WebSocket connection is established.
        on_disconnected: Called when WebSocket connection is closed, whoever closed
            it; ``websocket.close_code`` and ``websocket.close_reason`` say how.
        on_message: Called when a message is received from the WebSocket.
        on_messages: If set, called instead of ``on_message`` with the
            messages already received when the receive task runs (one or
            more, in order, at most ``MAX_BATCH_MESSAGES``): a client that
            falls behind handles what has piled up in one go.
        on_connection_lost: Called when the connection ended without us closing
            it (remote close, dead socket, write timeout, oversize message) and
            will not be reconnected, with the failure (after ``on_disconnected``;
            after the last attempt when the reconnect policy gave up, or when
            the call started ending during an outage).
        on_reconnecting: Called before each reconnect attempt with the attempt
            number (from 1), the delay before it and the failure that caused it.
        on_reconnected: Called when a reconnect attempt succeeded, with the new
            connection, the attempt number and the outage duration in seconds
            (after ``on_connected``).
        on_session_start: Called on every (re)connection before anything else
            is sent; returns the messages to send first (a protocol's hello).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    on_connected: Callable[[ClientConnection], Awaitable[None]]
    on_disconnected: Callable[[ClientConnection], Awaitable[None]]
    on_message: Callable[[ClientConnection, str | bytes], Awaitable[None]]
    on_messages: Callable[[ClientConnection, list[str | bytes]], Awaitable[None]] | None = None
    on_connection_lost: Callable[[ConnectionFailure], Awaitable[None]] | None = None
    on_reconnecting: Callable[[int, float, ConnectionFailure], Awaitable[None]] | None = None
    on_reconnected: Callable[[ClientConnection, int, float], Awaitable[None]] | None = None
    on_session_start: Callable[[], Awaitable[list[str | bytes]]] | None = None


class WebsocketClientSession:
    """A transport's WebSocket connection: dials, receives, sends, closes, redials.

    The input and output processors of a transport share one session: each
    :meth:`acquire` s it in ``setup`` and :meth:`release` s it when done (stop,
    cancel or cleanup, whichever comes first); the last holder to let go
    closes the connection. Its state is kept by a :class:`ConnectionState`.

    Example::

        session = WebsocketClientSession(uri, params, callbacks, "bot")
        await session.setup(task_manager)
        await session.connect()          # raises ConnectionFailure
        await session.send(b"...")       # False if not connected
        await session.disconnect()
    """

    def __init__(
        self,
        uri: str,
        params: WebsocketClientParams,
        callbacks: WebsocketClientCallbacks,
        transport_name: str,
    ):
        """Initialize the WebSocket client session.

        Args:
            uri: The WebSocket URI to connect to (``ws://`` or ``wss://``).
            params: Configuration parameters for the session.
            callbacks: Callback functions for session events.
            transport_name: Name of the parent transport for logging.

        Raises:
            ValueError: If ``uri`` is not a valid WebSocket URI.
        """
        self._safe_uri = redact_uri(uri)
        try:
            self._secure = parse_uri(uri).secure
        except InvalidURI as e:
            raise ValueError(f"invalid WebSocket URI {self._safe_uri!r}: {e.msg}") from None
        self._params = params
        self._callbacks = callbacks
        self._transport_name = transport_name

        self._task_manager: BaseTaskManager | None = None
        self._conn = ConnectionState()  # the state, changed only through its events
        self._websocket: ClientConnection | None = None
        self._receive_task: asyncio.Task | None = None
        self._reconnect_task: asyncio.Task | None = None
        self._policy = ReconnectPolicy(params.reconnect) if params.reconnect else None
        self._connect_lock = asyncio.Lock()  # binds to a loop on first use, not here
        self._settled = asyncio.Event()  # clear while connect() dials
        self._settled.set()
        self._holders: set[int] = set()
        # The call is ending (EndFrame): a connection lost from now on is not redialed.
        self._ending = False
        self._outage_cause: ConnectionFailure | None = None  # why the redial under way began
        # Why a connection is going down, when we know before websockets (write timeout).
        self._pending_failure: ConnectionFailure | None = None
        self._stats = WebsocketClientStats()
        self._dialer = Dialer(
            uri,
            params,
            secure=self._secure,
            safe_uri=self._safe_uri,
            name=str(self),
            stats=self._stats,
            on_session_start=callbacks.on_session_start,
        )

    def __str__(self):
        """String representation of the WebSocket client session."""
        return f"{self._transport_name}::WebsocketClientSession"

    # -- properties ---------------------------------------------------------

    @property
    def task_manager(self) -> BaseTaskManager:
        """The task manager given to :meth:`setup`.

        Raises:
            RuntimeError: If ``setup()`` has not been called yet.
        """
        if not self._task_manager:
            raise RuntimeError(
                f"{self}: task manager not set; call setup() first "
                "(is the transport in a running pipeline?)"
            )
        return self._task_manager

    @property
    def uri(self) -> str:
        """The URI with credentials redacted, safe to log."""
        return self._safe_uri

    @property
    def state(self) -> SessionState:
        """The session's :class:`SessionState` (kept by :class:`ConnectionState`)."""
        return self._conn.state

    @property
    def is_connected(self) -> bool:
        """Whether the session is OPEN and its socket open too."""
        ws = self._websocket
        return self._conn.is_open and ws is not None and ws.state is State.OPEN

    @property
    def is_closing(self) -> bool:
        """Whether we are closing the connection, or its closing handshake has begun."""
        ws = self._websocket
        return self._conn.closed_by_us or (ws is not None and ws.state is State.CLOSING)

    @property
    def is_reconnecting(self) -> bool:
        """Whether the connection was lost and the reconnect policy is redialing."""
        return self._conn.reconnecting

    @property
    def is_ending(self) -> bool:
        """Whether the call is ending (:meth:`call_ending`): a loss is no longer redialed."""
        return self._ending

    @property
    def may_come_back(self) -> bool:
        """Whether what cannot be sent now may go out on a later connection (else: dropped).

        True while redialing, or if a loss now would be redialed (on, not closing nor ending).
        """
        closing_or_ending = self._ending or self.is_closing
        return self._conn.reconnecting or (self._policy is not None and not closing_or_ending)

    @property
    def websocket(self) -> ClientConnection | None:
        """The open ``websockets`` connection, if any."""
        return self._websocket

    @property
    def stats(self) -> WebsocketClientStats:
        """The live counters of this session (see :meth:`WebsocketClientStats.snapshot`)."""
        ws = self._websocket
        if ws is not None and ws.latency:
            self._stats.ping_rtt_secs = ws.latency
        return self._stats

    # -- lifecycle ----------------------------------------------------------

    async def setup(self, task_manager: BaseTaskManager):
        """Set up the session with a task manager.

        Args:
            task_manager: The task manager to use for session tasks.
        """
        if not self._task_manager:
            self._task_manager = task_manager

    def acquire(self, holder: object) -> None:
        """Register ``holder`` (a processor) as using the connection.

        Args:
            holder: Any object; the same object must be passed to :meth:`release`.
        """
        self._holders.add(id(holder))

    async def call_ending(self) -> None:
        """The call is ending (an ``EndFrame`` is on its way): redial no more.

        A connection lost from now on is not redialed and an outage under way stops
        here, reported (``on_connection_lost``) at once: a peer that stalls or is down
        cannot hold the end up. Called as the ``EndFrame`` passes the input and the output.
        """
        if self._ending:
            return
        self._ending = True
        if self._conn.reconnecting:
            await self._stop_redial()
        if not self._conn.reconnecting:
            return  # not redialing, or it reconnected meanwhile: the call ends on that one
        self._conn.gave_up()
        policy, cause = self._policy, self._outage_cause
        assert policy is not None and cause is not None
        # Once its loop has begun this outage, the policy knows the last attempt's failure.
        last = policy.last_failure if policy.attempts and policy.last_failure else cause
        now, why = asyncio.get_running_loop().time(), "the call is ending"
        final = give_up_failure(policy, last, self._safe_uri, now, why=why)
        logger.warning(f"{self}: {final}")
        if self._callbacks.on_connection_lost is not None:
            await self._callbacks.on_connection_lost(final)

    def is_last_holder(self, holder: object) -> bool:
        """Whether ``holder`` is the only one still holding the connection.

        Args:
            holder: The object given to :meth:`acquire`.
        """
        return self._holders == {id(holder)}

    async def release(self, holder: object, *, close_timeout: float | None = None) -> None:
        """Let go of the connection; the last holder to let go closes it.

        Releasing twice, or without acquiring, does nothing, so a processor may
        call it from each of stop, cancel and cleanup.

        Args:
            holder: The object given to :meth:`acquire`.
            close_timeout: Bound for the closing handshake, overriding the
                ``close_timeout`` param (e.g. short on cancel).
        """
        if id(holder) in self._holders:
            self._holders.discard(id(holder))
            if not self._holders:
                await self.disconnect(close_timeout=close_timeout)

    async def connect(self):
        """Connect to the WebSocket server.

        Concurrent calls share one dial. Returns at once if already connected.

        Raises:
            ConnectionFailure: If the connection could not be made; the message
                names the redacted URI and the cause (e.g. ``HTTP 401``).
        """
        async with self._connect_lock:
            if self._conn.is_open:
                return
            self._conn.dial_started()
            self._settled.clear()
            try:
                try:
                    await self._dial()
                except ConnectionFailure as failure:
                    reconnect = self._params.reconnect
                    if not (reconnect and reconnect.retry_initial_connect):
                        raise
                    # Still CONNECTING: audio written meanwhile waits, as for a first dial.
                    final = await self._retry(failure, initial=True)
                    if final is not None:
                        raise final from failure
            finally:
                self._conn.connect_returned()  # CONNECTING -> IDLE: failed or cancelled
                self._settled.set()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait while a dial is in progress.

        Args:
            timeout: Longest wait in seconds; ``None`` waits for the dial.

        Returns:
            Whether the session is connected.
        """
        if self._conn.connecting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._settled.wait()
        return self.is_connected

    async def disconnect(self, *, close_timeout: float | None = None):
        """Disconnect from the WebSocket server.

        Closes with code 1000 after data already queued is sent, waiting at
        most ``close_timeout`` for the closing handshake, then drops the
        socket. ``on_disconnected`` fires once the connection is gone.

        Args:
            close_timeout: Override of the ``close_timeout`` param.
        """
        self._conn.redial_cancelled()  # RECONNECTING -> IDLE: an outage's redial stops
        await self._stop_redial()
        if (ws := self._websocket) is None:
            return
        self._conn.close_requested()
        timeout = close_timeout if close_timeout is not None else self._params.close_timeout
        try:
            async with asyncio.timeout(timeout):
                await ws.close(CLOSE_NORMAL)
        except TimeoutError:
            logger.warning(f"{self}: closing handshake timed out after {timeout}s, dropping socket")
            ws.transport.abort()
        except Exception as e:  # the socket may already be broken
            logger.debug(f"{self}: error while closing: {e!r}")
            ws.transport.abort()
        # Wait for the receive task to report the end of ``ws``.
        receiving = self._receive_task
        if receiving is None or receiving is asyncio.current_task():
            return
        try:
            async with asyncio.timeout(1.0):
                await asyncio.shield(receiving)
        except TimeoutError:
            logger.warning(f"{self}: receive task did not end, cancelling it")
            await self.task_manager.cancel_task(receiving)
            if self._websocket is ws:
                self._websocket = None
                self._conn.dropped()

    async def _stop_redial(self) -> None:
        redialing = self._reconnect_task
        if redialing is not None and redialing is not asyncio.current_task():
            self._reconnect_task = None
            await self.task_manager.cancel_task(redialing)

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake.

        For a peer that has stopped reading when the call must end now (a
        ``CancelFrame``): the end counts as ours, nothing is reconnected.
        """
        if (ws := self._websocket) is not None:
            self._conn.close_requested()
            ws.transport.abort()

    async def send(self, message: str | bytes) -> bool:
        """Send a message through the WebSocket connection.

        A send that blocks longer than ``write_timeout`` (the peer stopped
        reading) drops the connection, which is then reported as lost.

        Args:
            message: The message data to send.

        Returns:
            True if the message was handed to the socket, False if there was
            no open connection, or it broke while sending (the message may not
            have reached the peer).
        """
        ws = self._websocket
        if ws is None or not self._conn.is_open:
            return False
        try:
            if self._params.write_timeout is None or _cannot_block(ws, len(message)):
                await ws.send(message)
            else:
                async with asyncio.timeout(self._params.write_timeout):
                    await ws.send(message)
        except TimeoutError:
            self._drop_after_write_timeout(ws)
            return False
        except ConnectionClosed:
            return False
        if ws.state is not State.OPEN and _aborted(ws):
            # websockets releases a send blocked on a full buffer without an
            # error when the connection is aborted: what was buffered is gone.
            return False
        self._stats.messages_out += 1
        self._stats.bytes_out += len(message)
        return True

    # -- internals ----------------------------------------------------------

    async def _dial(self):
        started = asyncio.get_running_loop().time()
        websocket = await self._dialer.open()
        self._websocket = websocket
        self._conn.opened()
        self._pending_failure = None
        self._stats.connects += 1
        self._stats.connect_time_secs = took = asyncio.get_running_loop().time() - started
        logger.debug(f"{self}: connected to {self._safe_uri} in {took:.3f}s")
        self._receive_task = self.task_manager.create_task(
            self._receive_task_handler(websocket), f"{self}::receive"
        )
        await self._callbacks.on_connected(websocket)

    async def _receive_task_handler(self, websocket: ClientConnection):
        """Deliver messages until the connection ends, then report how it ended."""
        stats, callbacks = self._stats, self._callbacks
        on_messages = callbacks.on_messages
        try:
            async for message in websocket:
                batch = [message]
                if on_messages is not None:
                    # Messages already received go along (recv returns them
                    # without waiting): none waits for another.
                    while len(batch) < MAX_BATCH_MESSAGES and _message_waiting(websocket):
                        batch.append(await websocket.recv())
                stats.messages_in += len(batch)
                stats.bytes_in += sum(len(m) for m in batch)
                try:
                    if on_messages is not None:
                        await on_messages(websocket, batch)
                    else:
                        await callbacks.on_message(websocket, message)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    logger.exception(f"{self}: error handling a received message: {e!r}")
        except ConnectionClosed:
            pass
        await self._connection_ended(websocket)

    async def _connection_ended(self, websocket: ClientConnection):
        closed_by_us = self._conn.closed_by_us
        self._receive_task = None
        close_exc = websocket.protocol.close_exc
        # The close frame received, else the one we sent (1009 for an oversize
        # message: websocket.close_code says 1006 then, as nothing came back).
        close = (close_exc.rcvd or close_exc.sent) if close_exc is not None else None
        self._stats.disconnects += 1
        self._stats.last_close_code = close.code if close is not None else 1006
        self._stats.last_close_reason = close.reason if close is not None else ""

        failure = None
        retry = False
        if not closed_by_us:
            failure = self._pending_failure or failure_from_exception(
                close_exc, self._safe_uri, self._params, during_connect=False
            )
            retry = self._policy is not None and self._policy.should_retry(failure)
            if not retry and is_call_end(failure):
                logger.info(f"{self}: {failure} (the far end ended the call)")
            elif retry and self._ending:
                retry = False
                logger.warning(f"{self}: {failure}; not reconnecting: the call is ending")
            else:
                logger.warning(f"{self}: {failure}" + ("; reconnecting" if retry else ""))
        self._pending_failure = None
        if self._websocket is websocket:
            self._websocket = None
            # Set before any await: from here on, senders know to hold their data.
            self._conn.closed() if closed_by_us else self._conn.lost(reconnect=retry)

        try:
            await self._callbacks.on_disconnected(websocket)
        finally:
            if retry and failure is not None:
                self._outage_cause = failure
                self._reconnect_task = self.task_manager.create_task(
                    self._reconnect_task_handler(failure), f"{self}::reconnect"
                )
            elif failure is not None and self._callbacks.on_connection_lost is not None:
                await self._callbacks.on_connection_lost(failure)

    async def _reconnect_task_handler(self, failure: ConnectionFailure):
        final = await self._retry(failure, initial=False)
        self._reconnect_task = None
        if final is not None and self._callbacks.on_connection_lost is not None:
            await self._callbacks.on_connection_lost(final)

    async def _retry(self, cause: ConnectionFailure, *, initial: bool) -> ConnectionFailure | None:
        """Redial, CONNECTING if ``initial`` (a first dial's retries) else RECONNECTING.

        Returns None once reconnected or stopped, else the failure to report.
        """
        assert self._policy is not None
        self._conn.redial_started(initial=initial)
        outcome = await redial(
            self._policy,
            cause,
            self._dial,
            still_wanted=lambda: self._conn.redial_wanted(initial=initial),
            on_reconnecting=self._callbacks.on_reconnecting,
            safe_uri=self._safe_uri,
            name=str(self),
        )
        if outcome is None:
            return None  # disconnect() was called meanwhile
        if isinstance(outcome, Reconnected):
            logger.info(
                f"{self}: reconnected after {outcome.downtime_secs:.3f}s "
                f"(attempt {outcome.attempt})"
            )
            if self._callbacks.on_reconnected is not None and self._websocket is not None:
                await self._callbacks.on_reconnected(
                    self._websocket, outcome.attempt, outcome.downtime_secs
                )
            return None
        self._conn.gave_up()
        return outcome

    def _drop_after_write_timeout(self, websocket: ClientConnection):
        if self._pending_failure is None:
            self._pending_failure = ConnectionFailure(
                FailureKind.WRITE_TIMEOUT,
                self._safe_uri,
                f"send blocked for more than write_timeout={self._params.write_timeout}s "
                "(the peer has stopped reading)",
                during_connect=False,
            )
        websocket.transport.abort()


def _message_waiting(websocket: ClientConnection) -> bool:
    """Whether a whole message has been received and not read yet (recv will not wait).

    Looks at the connection's queue of received frames (websockets' ``Assembler``): its next
    frame starts a message and ends it. False if a later websockets changed those internals
    (each message then goes alone; ``tests/core/test_coalesce.py`` notices).
    """
    frames = getattr(getattr(websocket, "recv_messages", None), "frames", None)
    queue = getattr(frames, "queue", None)
    if not queue:
        return False
    head = queue[0]
    return bool(getattr(head, "fin", False)) and head.opcode in (Opcode.TEXT, Opcode.BINARY)


def _aborted(websocket: ClientConnection) -> bool:
    """Whether a connection that is no longer open ended without a close frame received."""
    close_exc = websocket.protocol.close_exc
    return close_exc is None or close_exc.rcvd is None


def _cannot_block(websocket: ClientConnection, size: int) -> bool:
    """Whether sending ``size`` bytes now returns without waiting for the peer.

    The send waits only when the transport's buffer is above its low-water
    mark (writing paused): below it, with room for the message, there is
    nothing to time out, so the hot path skips arming a timer per message.
    """
    transport = websocket.transport
    low, _ = transport.get_write_buffer_limits()
    return transport.get_write_buffer_size() + size <= low
