#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Open one connection: the handshake headers, ``websockets.connect``, the session's hello.

:class:`Dialer` is the session's way to the network for opening, and every
way it can fail becomes a :class:`~pipecat_wsclient.errors.ConnectionFailure`
naming the redacted URI and the cause: the OS and ``websockets`` errors
(:func:`~pipecat_wsclient.failures.failure_from_exception`), and the user's
code in the dial path (``headers_provider``, ``session_start_messages``),
which fails as ``CALLBACK`` with the socket closed (1011). With
``session.py``, the only module that talks to ``websockets``.

Two things of ``websockets`` are ours here. Redirects at the handshake
(:class:`_Connect`): websockets follows them anywhere and strips only
``Authorization`` and ``Cookie`` when the origin changes, so a custom
credential header (``X-Api-Key``) went to another host; we decide each hop
(:func:`redirect_hop`, pure): within the origin with every header, to another
origin only if ``allow_cross_origin_redirects``, and then without any of the
user's headers or user info. And the connection (:class:`GuardedConnection`):
it counts the server's pings and closes on a flood
(:class:`~pipecat_wsclient.flood.PingFloodGuard`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.frames import CloseCode, Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from pipecat_wsclient.errors import ConnectionFailure, FailureKind, redact_uri
from pipecat_wsclient.failures import CLOSE_INTERNAL_ERROR, failure_from_exception
from pipecat_wsclient.flood import PingFloodGuard
from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER

REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})
"""The statuses websockets follows as redirects (with a ``Location`` header)."""


@dataclass
class Dialer:
    """Opens connections to one URI with one set of params.

    Parameters:
        uri: The URI, with its credentials.
        params: The transport's params.
        secure: Whether the URI is ``wss://``.
        safe_uri: The redacted URI, for messages.
        name: Who dials, for log lines.
        stats: Counters to update (failed dials, hello messages sent).
        on_session_start: Returns the hello to send first, if any.
    """

    uri: str
    params: WebsocketClientParams
    secure: bool
    safe_uri: str
    name: str
    stats: WebsocketClientStats
    on_session_start: Callable[[], Awaitable[list[str | bytes]]] | None = None

    async def open(self) -> ClientConnection:
        """Dial, and send the session's hello.

        Returns:
            The open connection, its hello sent.

        Raises:
            ConnectionFailure: Why it could not be opened; nothing is left open.
        """
        try:
            headers = await handshake_headers(self.params)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats.connect_failures += 1
            raise self._callback_failure("headers_provider", e) from e
        try:
            options = connect_kwargs(
                self.params, secure=self.secure, safe_uri=self.safe_uri, name=self.name
            )
            options["create_connection"] = cast(
                type[ClientConnection],
                functools.partial(
                    GuardedConnection,
                    max_pings_per_sec=self.params.max_pings_per_sec,
                    stats=self.stats,
                ),
            )
            websocket = await _Connect(
                self.uri,
                additional_headers=headers,
                allow_cross_origin=self.params.allow_cross_origin_redirects,
                safe_uri=self.safe_uri,
                name=self.name,
                stats=self.stats,
                **options,
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats.connect_failures += 1
            raise failure_from_exception(e, self.safe_uri, self.params) from e
        try:
            await self._start_session(websocket)
        except asyncio.CancelledError:
            websocket.transport.abort()
            raise
        except ConnectionFailure:
            self.stats.connect_failures += 1
            await self._discard(websocket)
            raise
        return websocket

    async def _start_session(self, websocket: ClientConnection) -> None:
        """Send the protocol's hello (``on_session_start``) before anything else.

        Raises:
            ConnectionFailure: ``CALLBACK`` if the user's code raised or gave
                something that is not a message; the connection's failure if
                it closed or stopped reading meanwhile.
        """
        if self.on_session_start is None:
            return
        try:
            messages = await self.on_session_start()
            for message in messages:
                if not isinstance(message, str | bytes):
                    raise TypeError(
                        f"an item of type {type(message).__name__} (expected str or bytes)"
                    )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise self._callback_failure("session_start_messages", e) from e
        try:
            async with asyncio.timeout(self.params.write_timeout):
                for message in messages:
                    await websocket.send(message)
                    self.stats.messages_out += 1
                    self.stats.bytes_out += len(message)
        except TimeoutError as e:
            raise ConnectionFailure(
                FailureKind.WRITE_TIMEOUT,
                self.safe_uri,
                f"the session start messages were not taken within "
                f"write_timeout={self.params.write_timeout}s (the peer is not reading)",
            ) from e
        except ConnectionClosed as e:
            raise failure_from_exception(e, self.safe_uri, self.params) from e

    def _callback_failure(self, name: str, error: Exception) -> ConnectionFailure:
        detail = str(error)
        return ConnectionFailure(
            FailureKind.CALLBACK,
            self.safe_uri,
            f"{name} failed: {type(error).__name__}" + (f": {detail}" if detail else ""),
        )

    async def _discard(self, websocket: ClientConnection) -> None:
        """Close a connection that will not be used (its session could not start)."""
        try:
            async with asyncio.timeout(self.params.close_timeout):
                await websocket.close(CLOSE_INTERNAL_ERROR, "session start failed")
        except Exception as e:  # it may be broken already: the failure says why
            logger.debug(f"{self.name}: error while closing: {e!r}")
        finally:
            websocket.transport.abort()


async def handshake_headers(params: WebsocketClientParams) -> dict[str, str]:
    """The handshake headers: ``additional_headers``, then the provider's on top.

    Args:
        params: The transport's params.

    Returns:
        A new dict; the provider is called (and awaited if async) each time.
    """
    headers = dict(params.additional_headers or {})
    provider = params.headers_provider
    if provider is not None:
        extra = provider()
        if inspect.isawaitable(extra):
            extra = await extra
        headers.update(extra)
    return headers


def connect_kwargs(
    params: WebsocketClientParams, *, secure: bool, safe_uri: str, name: str
) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.client.connect``.

    Args:
        params: The transport's params.
        secure: Whether the URI is ``wss://`` (TLS options apply only then).
        safe_uri: The redacted URI, for the warning when verification is off.
        name: Who dials, for that warning.

    Returns:
        Timeouts, keepalive, size limit, compression, user agent, proxy,
        subprotocols, TLS context and our redacting logger.
    """
    p = params
    kwargs: dict[str, Any] = {
        "open_timeout": p.open_timeout,
        "close_timeout": p.close_timeout,
        "ping_interval": p.ping_interval,
        "ping_timeout": p.ping_timeout,
        "max_size": p.max_message_size,
        "compression": p.compression,
        "user_agent_header": p.user_agent,
        "proxy": None if p.proxy is False else p.proxy,
        "logger": WEBSOCKETS_LOGGER,
    }
    if p.subprotocols:
        kwargs["subprotocols"] = [Subprotocol(s) for s in p.subprotocols]
    if secure and p.ssl is not None and p.ssl is not True:
        if p.ssl is False:
            logger.warning(f"{name}: TLS certificate verification is OFF for {safe_uri}")
            context = ssl_module.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
            kwargs["ssl"] = context
        else:
            kwargs["ssl"] = p.ssl
    return kwargs


class RedirectRefused(Exception):
    """A redirect at the opening handshake that we do not follow.

    Attributes:
        target: The URI it leads to (as given, not redacted).
        reason: Why it is refused, for the failure's message.
    """

    def __init__(self, target: str, reason: str):
        """Initialize the refusal.

        Args:
            target: The URI the redirect leads to.
            reason: Why it is refused.
        """
        super().__init__(reason)
        self.target = target
        self.reason = reason


@dataclass(frozen=True)
class RedirectHop:
    """Where one redirect leads, and whether the request's credentials may go there.

    Parameters:
        uri: The URI to dial next; without user info when it leaves the origin.
        same_origin: Whether it has the original URI's scheme, host and port.
    """

    uri: str
    same_origin: bool


def redirect_hop(
    original: str, current: str, location: str, *, allow_cross_origin: bool
) -> RedirectHop:
    """Decide where a redirect at the opening handshake leads, and whether to go (pure).

    The origin is the scheme, host and port (RFC 6454), those of the URI the
    transport was given (``original``), whatever hops came before. Within
    it (another path, another query), the redirect is followed with every
    header. To another origin (``ws://127.0.0.1:8765`` to
    ``ws://localhost:8765``, to port 8766, or from ``ws://`` to ``wss://``)
    only when ``allow_cross_origin``, and then without user info. From
    ``wss://`` to ``ws://`` never: that would send the call in clear text.
    Examples::

        redirect_hop("ws://h/a", "ws://h/a", "/b", allow_cross_origin=False)
        # -> RedirectHop("ws://h/b", same_origin=True)
        redirect_hop("ws://h/a", "ws://h/a", "ws://u:p@g/b", allow_cross_origin=True)
        # -> RedirectHop("ws://g/b", same_origin=False)

    Args:
        original: The URI the transport was given.
        current: The URI that answered with the redirect (``original`` or a hop).
        location: The ``Location`` header, absolute or relative to ``current``.
        allow_cross_origin: Whether a redirect to another origin may be followed.

    Returns:
        The next hop.

    Raises:
        RedirectRefused: If the redirect is not followed: not a ``ws://`` or
            ``wss://`` URI, a TLS downgrade, or another origin not allowed.
    """
    target = urljoin(current, location)
    try:
        new = parse_uri(target)
    except InvalidURI as e:
        raise RedirectRefused(target, f"not a valid WebSocket URI ({e.msg}); refused") from None
    old = parse_uri(original)
    if old.secure and not new.secure:
        raise RedirectRefused(target, "from wss:// to ws:// would drop TLS; never followed")
    if (new.secure, new.host, new.port) == (old.secure, old.host, old.port):
        return RedirectHop(target, same_origin=True)
    if not allow_cross_origin:
        raise RedirectRefused(
            target,
            "another origin (scheme, host or port), where the request's headers would go "
            "too; refused. Set allow_cross_origin_redirects=True to follow it without "
            "credentials",
        )
    parts = urlsplit(target)
    return RedirectHop(
        urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), same_origin=False
    )


class _Connect(connect):
    """websockets' ``connect``, each redirect decided by :func:`redirect_hop`.

    websockets calls :meth:`process_redirect` for every error of a handshake;
    it follows the URI returned and raises an exception returned. Once a hop
    leaves the origin, no header of the user's goes to any later hop.
    """

    def __init__(
        self,
        uri: str,
        *,
        allow_cross_origin: bool,
        safe_uri: str,
        name: str,
        stats: WebsocketClientStats,
        **kwargs: Any,
    ):
        """Initialize the connector.

        Args:
            uri: The URI the transport was given.
            allow_cross_origin: Whether to follow redirects to another origin.
            safe_uri: ``uri`` redacted, for the failure.
            name: Who dials, for log lines.
            stats: Counters (``redirects``).
            **kwargs: For ``websockets.asyncio.client.connect``.
        """
        super().__init__(uri, **kwargs)
        self._original = uri
        self._allow_cross_origin = allow_cross_origin
        self._safe_uri = safe_uri
        self._name = name
        self._stats = stats
        self._left_origin = False

    def process_redirect(self, exc: Exception) -> Exception | str:
        """Return the URI to follow, or the exception to raise (a refusal is a failure).

        Args:
            exc: Why the handshake failed.

        Returns:
            ``exc`` if it is no redirect; the next URI; or a
            :class:`ConnectionFailure` (``HTTP_STATUS``, the 3xx status)
            naming both redacted URIs, for a redirect we do not follow.
        """
        if not (
            isinstance(exc, InvalidStatus)
            and exc.response.status_code in REDIRECT_STATUSES
            and "Location" in exc.response.headers
        ):
            return exc
        status = f"HTTP {exc.response.status_code} {exc.response.reason_phrase}".rstrip()
        try:
            hop = redirect_hop(
                self._original,
                self.uri,
                exc.response.headers["Location"],
                allow_cross_origin=self._allow_cross_origin,
            )
        except RedirectRefused as refused:
            return ConnectionFailure(
                FailureKind.HTTP_STATUS,
                self._safe_uri,
                f"{status} at the opening handshake: redirected from {redact_uri(self.uri)} "
                f"to {redact_uri(refused.target)}: {refused.reason}",
                status_code=exc.response.status_code,
            )
        self._stats.redirects += 1
        shown = f"{self._name}: {status}: redirected to {redact_uri(hop.uri)}"
        if hop.same_origin and not self._left_origin:
            logger.info(f"{shown} (same origin, with the request's headers)")
        else:
            self._left_origin = True
            self.additional_headers = None
            logger.warning(f"{shown} (another origin: without credentials)")
        return hop.uri


class GuardedConnection(ClientConnection):
    """websockets' ``ClientConnection`` that bounds what a server's pings can cost.

    Every ping and pong the server sends is counted by a
    :class:`~pipecat_wsclient.flood.PingFloodGuard` as websockets parses it
    (before it answers with a pong). The frame that makes it a flood is not
    answered: the connection fails with 1008 and the guard's reason, and
    whatever the server sent after it is discarded unread, so a flood costs
    at most its burst; the socket is closed once the close frame is written
    (dropped if that takes over ``close_timeout``). ``stats.pings_received``
    and ``stats.ping_floods`` count. Pass it to ``connect(create_connection=...)``
    with its extra arguments bound (``functools.partial``).
    """

    def __init__(
        self,
        protocol: ClientProtocol,
        *,
        max_pings_per_sec: float | None,
        stats: WebsocketClientStats,
        **kwargs: Any,
    ):
        """Initialize the connection.

        Args:
            protocol: websockets' sans-I/O protocol.
            max_pings_per_sec: The guard's rate; ``None`` counts pings only.
            stats: Counters to update.
            **kwargs: For ``ClientConnection``.
        """
        super().__init__(protocol, **kwargs)
        self._stats = stats
        self._guard = None if max_pings_per_sec is None else PingFloodGuard(max_pings_per_sec)
        self._recv_frame = protocol.recv_frame
        # The sans-I/O parser calls ``self.recv_frame(frame)`` for every frame.
        protocol.recv_frame = self._guarded_recv_frame  # type: ignore[method-assign]

    def start_keepalive(self) -> None:
        """Start websockets' keepalive, unless the connection is gone already.

        A flood that begins with the handshake's answer closes the connection
        before websockets starts the keepalive (connect() does after the
        handshake), and a keepalive on a closed connection logs an error.
        """
        if not self.connection_lost_waiter.done():
            super().start_keepalive()

    def _guarded_recv_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            if opcode is Opcode.PING:
                self._stats.pings_received += 1
            guard = self._guard
            if guard is not None and guard.received(self.loop.time()):
                self._flooded(guard)
                return
        self._recv_frame(frame)

    def _flooded(self, guard: PingFloodGuard) -> None:
        """Fail with 1008: read no more, send the close frame, then close the socket.

        Not waiting for the server's closing handshake: all it sends is
        discarded anyway, and until the socket is closed every send would wait
        for it. ``close_timeout`` bounds the flushing of what we still had to send.
        """
        self._stats.ping_floods += 1
        self.protocol.fail(CloseCode.POLICY_VIOLATION, guard.reason())
        # After data_received has written the close frame (it runs on after this frame).
        self.loop.call_soon(self.transport.close)
        if self.close_timeout is not None:
            self.loop.call_later(self.close_timeout, self.transport.abort)
