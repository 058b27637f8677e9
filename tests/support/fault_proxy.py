"""A TCP fault-injection proxy on 127.0.0.1 for reconnection tests.

``FaultProxy`` forwards bytes between each accepted client connection and a new
upstream connection, and can reset connections, stall traffic, add delay, cap
bandwidth and refuse new connections while traffic flows::

    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with connect(proxy.uri()) as ws:
            proxy.drop()  # The client sees a TCP reset.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import socket
import struct
import time
from collections.abc import Coroutine
from typing import Any

_EOF = b""  # Queue marker: the source half-closed its side.
_HIGH_WATER = 256 * 1024  # Queued bytes per direction before the source stops being read.
_LOW_WATER = 64 * 1024


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close ``transport`` with a TCP RST (SO_LINGER 0) instead of a FIN."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


class _Side(asyncio.Protocol):
    """One socket of a pair; feeds what it reads into its outgoing pipe."""

    def __init__(self, pair: _Pair) -> None:
        self.pair = pair
        self.transport: asyncio.Transport | None = None
        self.out: _Pipe  # Set by the pair: data read here goes out through this pipe.
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.pair.was_reset or self.pair.proxy.closed:
            _reset(transport)  # Connected after its pair was dropped or the proxy closed.
        self.update_reading()

    def data_received(self, data: bytes) -> None:
        self.out.put(data)

    def eof_received(self) -> bool:
        self.out.put(_EOF)
        return True  # Keep our write side open (half-close) until the pipe flushes.

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if exc is not None:
            self.pair.reset()  # Propagate a reset as a reset.
        else:
            self.out.put(_EOF)
        self.pair.check_done()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def update_reading(self) -> None:
        """Pause or resume reading according to stall state and queue size."""
        t = self.transport
        if t is None or t.is_closing():
            return
        want = not self.pair.proxy.stalled and self.out.queued < _HIGH_WATER
        if want and not t.is_reading():
            t.resume_reading()
        elif not want and t.is_reading():
            t.pause_reading()


class _Pipe:
    """One direction: a FIFO of (due time, chunk) and the task forwarding it."""

    def __init__(self, pair: _Pair, src: _Side, dst: _Side, up: bool) -> None:
        self.pair, self.src, self.dst, self.up = pair, src, dst, up
        self.items: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.eof = False  # An EOF marker was queued.
        self.done = False  # The EOF was delivered.
        self.wakeup = asyncio.Event()
        self.next_free = 0.0  # Bandwidth pacing: when the next byte may leave.

    def put(self, data: bytes) -> None:
        if self.eof:
            return
        self.eof = not data
        self.items.append((time.monotonic() + self.pair.proxy.delay, data))
        self.queued += len(data)
        self.wakeup.set()
        if self.queued >= _HIGH_WATER:
            self.src.update_reading()

    async def run(self) -> None:
        proxy = self.pair.proxy
        while True:
            while not self.items:
                self.wakeup.clear()
                await self.wakeup.wait()
            due, data = self.items[0]
            await proxy.flowing.wait()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self.pair.upstream_ready
            await proxy.flowing.wait()  # Stalled during the delay: hold the chunk.
            if not data:
                self.items.popleft()
                self.done = True
                t = self.dst.transport
                if t is not None and not t.is_closing() and t.can_write_eof():
                    t.write_eof()
                self.pair.check_done()
                return
            while data:
                rate = proxy.bandwidth
                piece = data if rate is None else data[: max(1024, int(rate) // 50)]
                if rate is not None:
                    now = time.monotonic()
                    self.next_free = max(self.next_free, now)
                    await asyncio.sleep(self.next_free - now)
                    self.next_free += len(piece) / rate
                await self.dst.writable.wait()
                await proxy.flowing.wait()
                t = self.dst.transport
                if t is not None and not t.is_closing():
                    t.write(piece)
                    if self.up:
                        proxy.bytes_up += len(piece)
                    else:
                        proxy.bytes_down += len(piece)
                data = data[len(piece) :]
                self.items[0] = (due, data)
                self.queued -= len(piece)
            self.items.popleft()
            if self.queued < _LOW_WATER:
                self.src.update_reading()


class _Pair:
    """A client connection, its upstream connection and the two pipes."""

    def __init__(self, proxy: FaultProxy) -> None:
        loop = asyncio.get_running_loop()
        self.proxy = proxy
        self.client, self.upstream = _Side(self), _Side(self)
        self.client.out = self.up = _Pipe(self, self.client, self.upstream, up=True)
        self.upstream.out = self.down = _Pipe(self, self.upstream, self.client, up=False)
        self.upstream_ready: asyncio.Future[None] = loop.create_future()
        self.was_reset = False
        self.tasks = [
            proxy.spawn(c) for c in (self._connect_upstream(), self.up.run(), self.down.run())
        ]

    async def _connect_upstream(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: self.upstream, self.proxy.upstream_host, self.proxy.upstream_port
            )
            self.upstream_ready.set_result(None)
        except OSError:
            pass  # Handled below: the client gets a reset, like a refused connection.
        finally:
            if not self.upstream_ready.done():
                if not self.upstream.lost.done():
                    self.upstream.lost.set_result(None)
                self.reset()
                self.check_done()

    def reset(self) -> None:
        """Reset both sockets with a TCP RST."""
        self.was_reset = True
        _reset(self.client.transport)
        _reset(self.upstream.transport)

    def abort(self) -> None:
        """Close both sockets at once, without flushing."""
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()

    def check_done(self) -> None:
        """Close once both directions delivered EOF; forget once both sockets are gone."""
        if self.up.done and self.down.done:
            for side in (self.client, self.upstream):
                if side.transport is not None:
                    side.transport.close()
        if self.client.lost.done() and self.upstream.lost.done():
            for task in self.tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            self.proxy.pairs.discard(self)


class FaultProxy:
    """Async context manager running a fault-injecting TCP proxy on 127.0.0.1.

    Attributes:
        port: The listening port (valid inside ``async with``).
        accepted: Client connections accepted and forwarded so far.
        refused: Client connections reset because the proxy was refusing.
        bytes_up: Bytes forwarded client -> upstream.
        bytes_down: Bytes forwarded upstream -> client.
        delay: Current one-way delay in seconds (see :meth:`set_delay`).
        bandwidth: Current per-direction cap in bytes/s, or ``None``.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.port = 0
        self.accepted = self.refused = self.bytes_up = self.bytes_down = 0
        self.delay = 0.0
        self.bandwidth: float | None = None
        self.pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refuse_until = 0.0
        self.closed = False
        self._server: asyncio.Server | None = None
        self.flowing = asyncio.Event()
        self.flowing.set()

    @property
    def active(self) -> int:
        """Number of live client/upstream pairs."""
        return len(self.pairs)

    @property
    def stalled(self) -> bool:
        """Whether forwarding is stopped (see :meth:`stall`)."""
        return not self.flowing.is_set()

    @property
    def refusing(self) -> bool:
        """Whether new connections are currently reset on accept."""
        return time.monotonic() < self._refuse_until

    def uri(self, path: str = "/ws", scheme: str = "ws") -> str:
        """Return e.g. ``ws://127.0.0.1:PORT/ws`` pointing at the proxy."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def drop(self) -> None:
        """Reset every current connection, client and upstream side, with a TCP RST."""
        for pair in list(self.pairs):
            pair.reset()

    def stall(self) -> None:
        """Stop forwarding and reading, both ways, for current and new connections."""
        self.flowing.clear()
        self._update_reading()

    def unstall(self) -> None:
        """Resume forwarding; held data is delivered in order."""
        self.flowing.set()
        self._update_reading()

    def set_delay(self, seconds: float) -> None:
        """Delay each chunk by ``seconds`` per direction (applies to new chunks)."""
        self.delay = max(0.0, seconds)

    def set_bandwidth(self, bytes_per_sec: float | None) -> None:
        """Cap throughput per direction to ``bytes_per_sec`` (``None``: unlimited)."""
        self.bandwidth = None if bytes_per_sec is None else max(1.0, float(bytes_per_sec))

    def refuse(self, seconds: float | None = None) -> None:
        """Reset new connections right after accept, for ``seconds`` or until :meth:`accept`."""
        self._refuse_until = math.inf if seconds is None else time.monotonic() + seconds

    def accept(self) -> None:
        """Accept and forward new connections again."""
        self._refuse_until = 0.0

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task that is cancelled and awaited on exit."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _update_reading(self) -> None:
        for pair in self.pairs:
            pair.client.update_reading()
            pair.upstream.update_reading()

    def _new_connection(self) -> asyncio.Protocol:
        if self.refusing:
            self.refused += 1
            return _Refuser()
        self.accepted += 1
        pair = _Pair(self)
        self.pairs.add(pair)
        return pair.client

    async def __aenter__(self) -> FaultProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self.closed = True
        self._server.close()
        pairs = list(self.pairs)
        for pair in pairs:
            pair.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        lost = [side.lost for pair in pairs for side in (pair.client, pair.upstream)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*lost), 1.0)  # Sockets really closed.
        await self._server.wait_closed()
        self.pairs.clear()


class _Refuser(asyncio.Protocol):
    """Protocol for a refused connection: reset it as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _reset(transport)
