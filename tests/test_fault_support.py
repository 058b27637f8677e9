"""Tests for tests/support/fault_proxy.py and tests/support/restartable.py.

Only the plain websockets client is used, so these check the test tools themselves.
"""

import asyncio
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidMessage,
    InvalidStatus,
)

from support.fault_proxy import FaultProxy
from support.restartable import RestartableServer, status_then_accept
from support.servers import echo_server, record_server, refused_uri, wait_until


def client(uri: str, **kwargs):
    kwargs.setdefault("open_timeout", 2)
    return connect(uri, compression=None, ping_interval=None, close_timeout=1, **kwargs)


async def test_proxy_echo_and_counters():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        assert proxy.uri() == f"ws://127.0.0.1:{proxy.port}/ws"
        assert proxy.uri("/x", "wss") == f"wss://127.0.0.1:{proxy.port}/x"
        async with client(proxy.uri()) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 1) == "hello"
            await ws.send(b"\x00" * 10_000)
            assert await asyncio.wait_for(ws.recv(), 1) == b"\x00" * 10_000
            assert (proxy.accepted, proxy.active, proxy.refused) == (1, 1, 0)
        assert proxy.bytes_up > 10_000 and proxy.bytes_down > 10_000
        await wait_until(lambda: proxy.active == 0, 2)
        await wait_until(lambda: server.close_codes == [1000], 2)  # Clean close went through.


async def test_proxy_drop_resets_both_sides():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            t0 = time.monotonic()
            proxy.drop()
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 1)
            assert time.monotonic() - t0 < 1
            assert info.value.rcvd is None and info.value.sent is None
            assert isinstance(info.value.__cause__, ConnectionResetError)
        await wait_until(lambda: server.close_codes == [1006], 2)
        await wait_until(lambda: proxy.active == 0, 2)


async def test_proxy_stall_holds_everything_until_unstall():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as ws:
            proxy.stall()
            pong = await ws.ping()
            await ws.send("one")
            await ws.send("two")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pong), 1)
            assert server.received == [] and proxy.stalled
            # New connections are stalled too: the handshake never completes.
            with pytest.raises(TimeoutError):
                async with client(proxy.uri(), open_timeout=0.3):
                    pass
            proxy.unstall()
            await asyncio.wait_for(pong, 1)
            assert await asyncio.wait_for(ws.recv(), 1) == "one"
            assert await asyncio.wait_for(ws.recv(), 1) == "two"
            assert server.messages == ["one", "two"]
        assert proxy.accepted == 2


async def test_proxy_delay_adds_to_round_trip():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as ws:
            proxy.set_delay(0.2)
            t0 = time.monotonic()
            await ws.send("ping")
            assert await ws.recv() == "ping"
            rtt = time.monotonic() - t0
            assert 0.35 <= rtt <= 1.0, rtt
            proxy.set_delay(0)
            t0 = time.monotonic()
            await ws.send("fast")
            assert await ws.recv() == "fast"
            assert time.monotonic() - t0 < 0.1


async def test_proxy_bandwidth_caps_throughput():
    async with record_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as ws:
            proxy.set_bandwidth(50_000)
            t0 = time.monotonic()
            await ws.send(b"x" * 100_000)
            await wait_until(lambda: len(server.received) == 1, 5)
            elapsed = time.monotonic() - t0
            assert 1.5 <= elapsed <= 3.0, elapsed


async def test_proxy_refuse_then_accept_again():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as existing:
            proxy.refuse(0.5)
            t0 = time.monotonic()
            with pytest.raises((OSError, InvalidMessage)):
                async with client(proxy.uri()):
                    pass
            assert time.monotonic() - t0 < 0.3
            assert proxy.refused == 1 and proxy.refusing
            await existing.send("still here")  # Existing connections are unaffected.
            assert await existing.recv() == "still here"
            await asyncio.sleep(0.6)
            assert not proxy.refusing
            async with client(proxy.uri()) as ws:
                await ws.send("back")
                assert await ws.recv() == "back"
            proxy.refuse()
            with pytest.raises((OSError, InvalidMessage)):
                async with client(proxy.uri()):
                    pass
            proxy.accept()
            async with client(proxy.uri()) as ws:
                await ws.send("again")
                assert await ws.recv() == "again"
        assert (proxy.accepted, proxy.refused) == (3, 2)


async def test_proxy_refuse_is_a_tcp_reset():
    async with echo_server() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.refuse()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(10), 1)
        finally:
            writer.close()
        assert (proxy.accepted, proxy.refused, proxy.active) == (0, 1, 0)


async def test_proxy_upstream_down_resets_client():
    port = int(refused_uri().rsplit(":", 1)[1].split("/")[0])
    async with FaultProxy("127.0.0.1", port) as proxy:
        with pytest.raises((OSError, InvalidMessage)):
            async with client(proxy.uri()):
                pass
        await wait_until(lambda: proxy.active == 0, 2)


@pytest.mark.parametrize("graceful", [True, False])
async def test_restartable_stop_and_start(graceful):
    async with RestartableServer(echo=True) as server:
        port, first_start = server.port, server.started_at
        async with client(server.uri) as ws:
            await ws.send("a")
            assert await ws.recv() == "a"
            await server.stop(graceful=graceful)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 1)
            if graceful:
                assert info.value.rcvd is not None and info.value.rcvd.code == 1012
            else:
                assert info.value.rcvd is None
        assert not server.running and server.close_codes == [1012 if graceful else 1006]
        with pytest.raises(OSError):
            async with client(server.uri):
                pass
        await server.start()
        assert server.port == port and server.started_at > first_start
        async with client(server.uri) as ws:
            await ws.send("b")
            assert await ws.recv() == "b"
        await wait_until(lambda: len(server.close_codes) == 2, 2)
        assert server.connections == 2 and server.messages == ["a", "b"]
        assert len(server.request_headers) == 2


async def test_restartable_behind_proxy_crash_and_restart():
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with client(proxy.uri()) as ws:
            await ws.send("x")
            await wait_until(lambda: server.messages == ["x"], 1)
            await server.stop()
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 1)
        await server.start()
        async with client(proxy.uri()) as ws:
            await ws.send("y")
            await wait_until(lambda: server.messages == ["x", "y"], 1)
        assert proxy.accepted == 2


async def test_status_then_accept():
    process_request = status_then_accept([503, 503, 503])
    async with RestartableServer(echo=True, process_request=process_request) as server:
        for _ in range(3):
            with pytest.raises(InvalidStatus) as info:
                async with client(server.uri):
                    pass
            assert info.value.response.status_code == 503
        async with client(server.uri) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        assert (process_request.attempts, process_request.rejected) == (4, 3)
        assert server.connections == 1
