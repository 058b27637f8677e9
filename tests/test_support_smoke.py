"""Smoke tests for tests/support, using only the websockets client."""

import asyncio
import ssl
import time

import pytest
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.processes import pipecat_echo_server
from support.servers import (
    closing_server,
    echo_server,
    junk_server,
    record_server,
    refused_uri,
    silent_server,
    status_server,
    stop_reading_server,
    wait_until,
)
from support.tls import make_tls, tls_echo_server


async def test_echo_round_trip():
    async with echo_server(subprotocols=["pipecat"]) as server:
        assert server.uri == f"ws://127.0.0.1:{server.port}/ws"
        async with connect(server.uri, subprotocols=["pipecat"], compression=None) as ws:
            await ws.send(b"\x01\x02")
            assert await ws.recv() == b"\x01\x02"
            await ws.send("hi")
            assert await ws.recv() == "hi"
        await wait_until(lambda: server.close_codes == [1000])
        assert server.messages == [b"\x01\x02", "hi"]
        assert server.connections == 1
        assert server.subprotocols == ["pipecat"]
        assert server.request_headers[0]["sec-websocket-protocol"] == "pipecat"
        assert server.received[0][0] <= server.received[1][0] <= time.monotonic()


async def test_record_server_records_without_echo():
    async with record_server(send_on_connect=["hello", b"\x00"]) as server:
        async with connect(server.uri) as ws:
            assert await ws.recv() == "hello"
            assert await ws.recv() == b"\x00"
            await ws.send(b"abc")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
        await wait_until(lambda: server.close_codes == [1000])
        assert server.messages == [b"abc"]


async def test_status_server_rejects():
    async with status_server(401) as server:
        with pytest.raises(InvalidStatus) as exc_info:
            async with connect(server.uri):
                pass
        assert exc_info.value.response.status_code == 401
        assert exc_info.value.response.body == b"nope"
        assert server.attempts == 1
        assert server.connections == 0


async def test_silent_server_times_out():
    async with silent_server() as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with connect(server.uri, open_timeout=0.5):
                pass
        assert 0.4 < time.monotonic() - started < 3
        assert server.attempts == 1


async def test_junk_server_sends_in_order_then_echoes():
    async with junk_server([b"\xff\xfe", "not a frame", b""]) as server:
        async with connect(server.uri) as ws:
            assert [await ws.recv() for _ in range(3)] == [b"\xff\xfe", "not a frame", b""]
            await ws.send("ping")
            assert await ws.recv() == "ping"


async def test_closing_server_closes_with_code():
    async with closing_server(4001, "bye", after=0.1) as server:
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "bye"
        await wait_until(lambda: server.close_codes == [4001])


async def test_stop_reading_server_blocks_writes():
    async with stop_reading_server() as server:
        async with connect(server.uri, close_timeout=0.5, max_size=None) as ws:
            await asyncio.wait_for(server.connected.wait(), 2)
            chunk = b"\x01" * 65536
            for _ in range(2000):  # Up to 128 MiB; loopback buffers are a few MiB.
                try:
                    await asyncio.wait_for(ws.send(chunk), 0.5)
                except TimeoutError:
                    break
            else:
                pytest.fail("send never blocked")
            # websockets' close() drains before close_timeout applies, so it would
            # hang while the server doesn't read: abort instead.
            ws.transport.abort()
        assert server.received == []


async def test_refused_uri():
    with pytest.raises(OSError):
        async with connect(refused_uri(), open_timeout=2):
            pass


async def test_tls_echo_server():
    tls = make_tls()
    assert tls.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    async with tls_echo_server(tls.server_context) as server:
        assert server.uri.startswith("wss://127.0.0.1:")
        async with connect(server.uri, ssl=tls.client_context) as ws:
            await ws.send("secure")
            assert await ws.recv() == "secure"
        async with connect(server.uri, ssl=ssl.create_default_context(cafile=tls.ca_file)) as ws:
            await ws.send(b"x")
            assert await ws.recv() == b"x"
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(server.uri):
                pass


async def test_pipecat_echo_server_echoes_audio():
    serializer = ProtobufFrameSerializer()
    audio = bytes((i % 250) + 1 for i in range(3200))  # 100 ms, no zero byte.
    payload = await serializer.serialize(
        OutputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1)
    )
    with pipecat_echo_server() as uri:
        async with connect(uri) as ws:
            await ws.send(payload)
            echoed = b""
            chunks = []
            while len(echoed) < len(audio):
                frame = await serializer.deserialize(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, InputAudioRawFrame):
                    assert (frame.sample_rate, frame.num_channels) == (16000, 1)
                    chunks.append(len(frame.audio))
                    echoed += frame.audio
    assert echoed[: len(audio)] == audio
    assert set(echoed[len(audio) :]) <= {0}  # Last partial chunk is padded with silence.
    assert chunks == [1280, 1280, 1280]
