"""Real WebSocket/TCP servers on 127.0.0.1 for tests.

Every server binds a random free port, is an ``@asynccontextmanager`` yielding a
:class:`ServerInfo`, and shuts down fully (connections closed, handlers
returned) when the ``async with`` block exits.

All WebSocket servers use ``compression=None`` and ``ping_interval=None`` (the
server never sends keepalive pings of its own, so tests stay deterministic; it
still answers the client's pings while it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

Message = bytes | str
Behaviour = Callable[[ServerConnection, "ServerInfo"], Awaitable[None]]


@dataclass
class ServerInfo:
    """What a test server saw, plus where to reach it.

    Attributes:
        port: The bound TCP port.
        scheme: ``"ws"`` or ``"wss"``.
        path: Path used in :attr:`uri` (the servers accept any path).
        received: ``(time.monotonic(), message)`` for every message received.
        connections: Number of accepted WebSocket connections.
        close_codes: Close code the client sent, one entry per finished
            connection (1006 if the connection dropped without a close frame).
        request_headers: Handshake request headers of each connection, with
            lower-cased keys.
        subprotocols: Subprotocol chosen for each connection (``None`` if none).
        attempts: Handshake/TCP attempts (``status_server``/``silent_server``).
        connected: Set as soon as a connection has been accepted.
    """

    port: int = 0
    scheme: str = "ws"
    path: str = "/ws"
    received: list[tuple[float, Message]] = field(default_factory=list)
    connections: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)
    attempts: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def uri(self) -> str:
        """The URI to connect to, e.g. ``ws://127.0.0.1:PORT/ws``."""
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    @property
    def messages(self) -> list[Message]:
        """The received messages without their timestamps."""
        return [message for _, message in self.received]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused_uri() -> str:
    """Return a ``ws://`` URI on 127.0.0.1 where nothing listens."""
    return f"ws://127.0.0.1:{free_port()}/ws"


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it is true.

    Args:
        predicate: Condition to wait for.
        timeout: Seconds before giving up.

    Raises:
        TimeoutError: If the condition did not become true in time.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


async def _record(ws: ServerConnection, info: ServerInfo, echo: bool = False) -> None:
    """Record (and optionally echo) every message until the connection closes."""
    async for message in ws:
        info.received.append((time.monotonic(), message))
        if echo:
            await ws.send(message)


@contextlib.asynccontextmanager
async def _serve(
    behaviour: Behaviour,
    *,
    info: ServerInfo | None = None,
    subprotocols: list[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs,
) -> AsyncIterator[ServerInfo]:
    """Run a WebSocket server whose connections run ``behaviour``.

    Args:
        behaviour: Coroutine run for each accepted connection.
        info: The :class:`ServerInfo` to fill in (a new one by default).
        subprotocols: Subprotocols the server supports.
        ssl_context: Server TLS context; makes the URI ``wss://``.
        **kwargs: Extra arguments for ``websockets.asyncio.server.serve``.

    Yields:
        The server's :class:`ServerInfo`.
    """
    info = ServerInfo() if info is None else info
    info.scheme = "wss" if ssl_context else "ws"

    async def handler(ws: ServerConnection) -> None:
        info.connections += 1
        info.request_headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        info.subprotocols.append(ws.subprotocol)
        info.connected.set()
        try:
            await behaviour(ws, info)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            info.close_codes.append(ws.close_code)

    kwargs.setdefault("compression", None)
    kwargs.setdefault("ping_interval", None)
    async with serve(
        handler, "127.0.0.1", 0, subprotocols=subprotocols, ssl=ssl_context, **kwargs
    ) as server:
        info.port = next(iter(server.sockets)).getsockname()[1]
        yield info


@contextlib.asynccontextmanager
async def echo_server(
    subprotocols: list[str] | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[ServerInfo]:
    """Serve WebSocket connections that echo every message back unchanged.

    Args:
        subprotocols: Subprotocols the server supports.
        ssl_context: Server TLS context; makes the URI ``wss://``.

    Yields:
        The server's :class:`ServerInfo`.
    """

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        await _record(ws, info, echo=True)

    async with _serve(behaviour, subprotocols=subprotocols, ssl_context=ssl_context) as info:
        yield info


@contextlib.asynccontextmanager
async def record_server(
    send_on_connect: list[Message] | None = None, subprotocols: list[str] | None = None
) -> AsyncIterator[ServerInfo]:
    """Serve WebSocket connections that only record what they receive.

    Args:
        send_on_connect: Messages sent, in order, right after accepting.
        subprotocols: Subprotocols the server supports.

    Yields:
        The server's :class:`ServerInfo`.
    """

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        for message in send_on_connect or []:
            await ws.send(message)
        await _record(ws, info)

    async with _serve(behaviour, subprotocols=subprotocols) as info:
        yield info


@contextlib.asynccontextmanager
async def junk_server(messages: list[Message], then_echo: bool = True) -> AsyncIterator[ServerInfo]:
    """Serve WebSocket connections that first send ``messages``, then echo.

    Args:
        messages: Messages sent, in order, right after accepting.
        then_echo: Echo incoming messages afterwards (otherwise only record them).

    Yields:
        The server's :class:`ServerInfo`.
    """

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        for message in messages:
            await ws.send(message)
        await _record(ws, info, echo=then_echo)

    async with _serve(behaviour) as info:
        yield info


@contextlib.asynccontextmanager
async def closing_server(code: int, reason: str, after: float = 0.0) -> AsyncIterator[ServerInfo]:
    """Serve WebSocket connections that the server closes with ``code``/``reason``.

    Args:
        code: Close code the server sends.
        reason: Close reason the server sends.
        after: Seconds to wait (recording incoming messages) before closing.

    Yields:
        The server's :class:`ServerInfo`.
    """

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_record(ws, info), after)
        await ws.close(code, reason)

    async with _serve(behaviour) as info:
        yield info


@contextlib.asynccontextmanager
async def stop_reading_server(
    send_on_connect: list[Message] | None = None,
) -> AsyncIterator[ServerInfo]:
    """Serve WebSocket connections that never read again after the handshake.

    The underlying transport stops reading right after accept, so once the
    kernel buffers fill up, the client's writes block. ``info.connected`` is
    set when a connection has been accepted.

    Note: a websockets client's ``close()`` then hangs (it drains its write
    buffer before ``close_timeout`` applies); abort its transport instead.

    Args:
        send_on_connect: Messages sent, in order, right after accepting (a
            protocol's opening, e.g. Asterisk's ``MEDIA_START``).

    Yields:
        The server's :class:`ServerInfo`.
    """

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        ws.transport.pause_reading()
        for message in send_on_connect or []:
            await ws.send(message)
        await ws.wait_closed()  # The server closes it on exit (after close_timeout).

    async with _serve(behaviour, close_timeout=0.5) as info:
        yield info


@contextlib.asynccontextmanager
async def status_server(
    status: int, body: bytes = b"nope", headers: dict[str, str] | None = None
) -> AsyncIterator[ServerInfo]:
    """Serve HTTP that rejects every WebSocket handshake with ``status``.

    Args:
        status: HTTP status code of the response.
        body: Response body (sent as UTF-8 text).
        headers: Extra response headers, e.g. ``{"Location": ...}`` for 3xx.

    Yields:
        The server's :class:`ServerInfo`; ``attempts`` counts handshakes.
    """
    info = ServerInfo()

    def process_request(connection: ServerConnection, request: Request) -> Response:
        info.attempts += 1
        response = connection.respond(status, body.decode("utf-8", "replace"))
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        raise AssertionError("status_server never accepts a handshake")

    async with _serve(behaviour, info=info, process_request=process_request):
        yield info


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[ServerInfo]:
    """Serve raw TCP that accepts connections and never sends a byte.

    The WebSocket handshake therefore never completes. Accepted sockets are
    closed on exit.

    Yields:
        A :class:`ServerInfo`; ``attempts`` counts accepted TCP connections.
    """
    info = ServerInfo()
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.attempts += 1
        info.connected.set()
        writers.append(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    info.port = server.sockets[0].getsockname()[1]
    try:
        yield info
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
        await server.wait_closed()
