"""A WebSocket server that can crash and come back on the same port.

``RestartableServer`` keeps its port across :meth:`~RestartableServer.stop` /
:meth:`~RestartableServer.start` cycles and records what every incarnation saw,
like :class:`support.servers.ServerInfo`::

    async with RestartableServer(echo=True) as server:
        ...
        await server.stop()  # Crash: connections are aborted, no close frame.
        await server.start()  # Same port, new connections welcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from support.servers import Message, free_port

ProcessRequest = Callable[
    [ServerConnection, Request], "Response | Awaitable[Response | None] | None"
]


class StatusThenAccept:
    """``process_request`` callable: reject the first handshakes, then accept.

    Attributes:
        statuses: HTTP statuses answered to the first ``len(statuses)`` handshakes.
        attempts: Handshakes seen so far (rejected and accepted).
        rejected: Handshakes answered with one of ``statuses``.
    """

    def __init__(self, statuses: list[int], body: str = "try again later") -> None:
        self.statuses = list(statuses)
        self.body = body
        self.attempts = 0
        self.rejected = 0

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        if self.rejected < len(self.statuses):
            status = self.statuses[self.rejected]
            self.rejected += 1
            return connection.respond(status, self.body)
        return None


def status_then_accept(statuses: list[int], body: str = "try again later") -> StatusThenAccept:
    """Make a ``process_request`` that answers ``statuses`` in turn, then accepts.

    Args:
        statuses: HTTP statuses for the first handshakes, e.g. ``[503, 503, 503]``.
        body: Response body of the rejections.

    Returns:
        The callable; its ``attempts`` and ``rejected`` attributes count handshakes.
    """
    return StatusThenAccept(statuses, body)


class RestartableServer:
    """Async context manager: a WebSocket server on a fixed port that can be restarted.

    Uses ``compression=None`` and ``ping_interval=None`` like the other test servers.

    Attributes:
        port: The fixed TCP port, chosen at construction.
        path: Path used in :attr:`uri`.
        received: ``(time.monotonic(), message)`` for every message, across restarts.
        connections: Number of accepted WebSocket connections, across restarts.
        close_codes: One entry per finished connection: the close code the client
            sent, or 1006 if the connection ended without a close frame.
        request_headers: Handshake request headers of each connection, lower-cased keys.
        started_at: ``time.monotonic()`` of the last :meth:`start`.
        stopped_at: ``time.monotonic()`` of the last :meth:`stop`, or ``None``.
        connected: Set when a connection is accepted; cleared by :meth:`start`.
    """

    def __init__(
        self,
        *,
        echo: bool = False,
        process_request: ProcessRequest | None = None,
        port: int | None = None,
        path: str = "/ws",
        **serve_kwargs: Any,
    ) -> None:
        """Create the server (not started yet).

        Args:
            echo: Echo every message back (otherwise only record it).
            process_request: Passed to ``serve``, e.g. :func:`status_then_accept`.
            port: Port to use; a free one by default.
            path: Path used in :attr:`uri` (any path is accepted).
            **serve_kwargs: Extra arguments for ``websockets.asyncio.server.serve``.
        """
        self.echo = echo
        self.port = free_port() if port is None else port
        self.path = path
        self.received: list[tuple[float, Message]] = []
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.request_headers: list[dict[str, str]] = []
        self.started_at = 0.0
        self.stopped_at: float | None = None
        self.connected = asyncio.Event()
        self._live: set[ServerConnection] = set()
        self._server: Server | None = None
        serve_kwargs.setdefault("compression", None)
        serve_kwargs.setdefault("ping_interval", None)
        serve_kwargs.setdefault("close_timeout", 1.0)
        self._serve_kwargs = dict(serve_kwargs, process_request=process_request)

    @property
    def uri(self) -> str:
        """The URI to connect to, e.g. ``ws://127.0.0.1:PORT/ws``."""
        return f"ws://127.0.0.1:{self.port}{self.path}"

    @property
    def messages(self) -> list[Message]:
        """The received messages without their timestamps."""
        return [message for _, message in self.received]

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    @property
    def live(self) -> int:
        """Number of connections currently open."""
        return len(self._live)

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.request_headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        self._live.add(ws)
        self.connected.set()
        try:
            async for message in ws:
                self.received.append((time.monotonic(), message))
                if self.echo:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            self._live.discard(ws)
            self.close_codes.append(ws.close_code)

    async def start(self) -> None:
        """Listen on :attr:`port` again (no-op if already running)."""
        if self._server is not None:
            return
        self._server = await serve(
            self._handler, "127.0.0.1", self.port, reuse_address=True, **self._serve_kwargs
        )
        self.started_at = time.monotonic()
        self.connected.clear()

    async def stop(self, graceful: bool = False) -> None:
        """Stop listening and end every connection, like a crash or a restart.

        Args:
            graceful: Close connections with code 1012 (service restart). Otherwise
                abort their TCP connections without a close frame (the client sees
                1006).
        """
        server, self._server = self._server, None
        if server is None:
            return
        self.stopped_at = time.monotonic()
        if graceful:
            server.close(code=1012, reason="service restart")
        else:
            server.close(close_connections=False)
            for connection in list(server.all_connections):
                connection.transport.abort()
        await server.wait_closed()

    async def close_connections(self, code: int, reason: str = "") -> None:
        """Close every open connection with ``code``, and keep listening.

        Args:
            code: The close code to send (1000, 1001, 4000, ...).
            reason: The close reason.
        """
        for connection in list(self._live):
            await connection.close(code, reason)

    async def send_to_clients(self, message: Message) -> None:
        """Send ``message`` on every open connection (e.g. junk the client must survive)."""
        for connection in list(self._live):
            with contextlib.suppress(ConnectionClosed):
                await connection.send(message)

    async def __aenter__(self) -> RestartableServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
