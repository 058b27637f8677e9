"""An open connection that the server ends is reported and ends the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from websockets.asyncio.server import ServerConnection, serve

from harness import make_transport, run_pipeline
from pipecat_wsclient import (
    ConnectionFailure,
    FailureKind,
    WebsocketClientTransport,
)
from support.servers import closing_server


class Recorder:
    """Record the transport's events, with times relative to ``start``."""

    def __init__(self, transport: WebsocketClientTransport):
        self.start = time.monotonic()
        self.connected: list[float] = []
        self.disconnected: list[tuple[float, int | None, str | None]] = []
        self.failures: list[tuple[float, ConnectionFailure]] = []

        @transport.event_handler("on_connected")
        async def on_connected(transport, websocket):
            self.connected.append(self.now())

        @transport.event_handler("on_disconnected")
        async def on_disconnected(transport, websocket):
            self.disconnected.append((self.now(), websocket.close_code, websocket.close_reason))

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            self.failures.append((self.now(), error))

    def now(self) -> float:
        return time.monotonic() - self.start


async def test_server_closes_with_1001():
    async with closing_server(1001, "going away now", after=0.3) as server:
        transport = make_transport(server.uri, open_timeout=3.0, reconnect=None)
        rec = Recorder(transport)
        async with run_pipeline(transport) as p:
            error_times: list[float] = []

            @p.worker.event_handler("on_pipeline_error")
            async def on_pipeline_error(worker, frame):
                error_times.append(rec.now())

            await p.wait(3.0)
            ended = rec.now()
        assert server.connections == 1
    print(
        f"TIMING remote close 1001: connected at {rec.connected[0]:.3f}s, fatal ErrorFrame at "
        f"{error_times[0]:.3f}s, pipeline ended at {ended:.3f}s"
    )
    assert ended <= 3.0

    assert len(rec.connected) == 1
    assert [(code, reason) for _, code, reason in rec.disconnected] == [(1001, "going away now")]

    assert len(p.errors) == 1, [e.error for e in p.errors]
    frame = p.errors[0]
    assert frame.fatal is True
    assert "1001" in frame.error
    assert "going away now" in frame.error
    assert f"127.0.0.1:{server.port}" in frame.error
    # It came after the server's close, not before.
    assert error_times[0] >= 0.3

    assert len(rec.failures) == 1
    failure = rec.failures[0][1]
    assert failure.kind is FailureKind.CLOSED
    assert failure.close_code == 1001
    assert failure.close_reason == "going away now"
    assert failure.during_connect is False
    assert frame.exception is failure


@contextlib.asynccontextmanager
async def big_message_server(size: int) -> AsyncIterator[tuple[str, list[int | None]]]:
    """Serve connections that get one ``size``-byte message right after accept."""
    close_codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00" * size)
        await ws.wait_closed()
        close_codes.append(ws.close_code)

    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws", close_codes


async def test_message_over_max_message_size():
    async with big_message_server(300_000) as (uri, server_close_codes):
        transport = make_transport(uri, open_timeout=3.0, max_message_size=100_000)
        rec = Recorder(transport)
        async with run_pipeline(transport) as p:
            error_times: list[float] = []

            @p.worker.event_handler("on_pipeline_error")
            async def on_pipeline_error(worker, frame):
                error_times.append(rec.now())

            await p.wait(5.0)
            ended = rec.now()
        # The server saw the client's 1009.
        for _ in range(100):
            if server_close_codes:
                break
            await asyncio.sleep(0.01)
        assert server_close_codes == [1009]
    print(
        f"TIMING message too big: fatal ErrorFrame at {error_times[0]:.3f}s, "
        f"pipeline ended at {ended:.3f}s"
    )
    assert ended <= 3.0

    assert len(p.errors) == 1, [e.error for e in p.errors]
    frame = p.errors[0]
    assert frame.fatal is True
    assert "1009" in frame.error
    assert "max_message_size" in frame.error
    assert "100000" in frame.error

    assert len(rec.failures) == 1
    failure = rec.failures[0][1]
    assert failure.kind is FailureKind.MESSAGE_TOO_BIG
    assert failure.close_code == 1009
    assert failure.during_connect is False
    # on_disconnected fired once. websocket.close_code there is 1006, not 1009:
    # websockets reports the code *received*, and after failing the connection
    # the client discards the server's echo of its close frame. The 1009 is on
    # the failure (and the server received it, checked above).
    assert len(rec.disconnected) == 1
    # Nothing of the oversize message reached the pipeline.
    assert p.collector.audio() == b""
