"""wss:// against a server whose certificate comes from a private test CA."""

from __future__ import annotations

import time

import pytest
from loguru import logger
from pipecat.frames.frames import TTSAudioRawFrame

from harness import RATE, make_transport, pcm, run_pipeline, wait_for
from pipecat_wsclient import (
    ConnectionFailure,
    FailureKind,
    WebsocketClientTransport,
)
from support.tls import TLSMaterial, make_tls, tls_echo_server

_UNSET = object()


@pytest.fixture(scope="module")
def tls() -> TLSMaterial:
    return make_tls()


def tls_transport(uri: str, ssl=_UNSET, **params) -> WebsocketClientTransport:
    if ssl is not _UNSET:
        params["ssl"] = ssl
    return make_transport(uri, open_timeout=3.0, **params)


async def echo_round_trip(transport: WebsocketClientTransport) -> None:
    """Send 1 s of audio through the pipeline and check it comes back byte-exact.

    1 s is a whole number of 40 ms output chunks: Pipecat's output holds back a
    partial chunk until more audio arrives.
    """
    connected = []
    errors = []

    @transport.event_handler("on_connected")
    async def on_connected(transport, websocket):
        connected.append(websocket)

    @transport.event_handler("on_connection_error")
    async def on_connection_error(transport, error):
        errors.append(error)

    async with run_pipeline(transport) as p:
        audio = pcm(1.0)
        await p.send(TTSAudioRawFrame(audio, RATE, 1))
        await wait_for(lambda: len(p.collector.audio()) >= len(audio) or p.task.done(), 5)
        assert not errors, [str(e) for e in errors]
        assert p.errors == []
        assert p.collector.audio() == audio
        await p.end()
    assert len(connected) == 1


async def test_wss_with_trusted_ca_round_trip(tls: TLSMaterial):
    async with tls_echo_server(tls.server_context) as server:
        assert server.uri.startswith("wss://")
        await echo_round_trip(tls_transport(server.uri, ssl=tls.client_context))
        assert server.connections == 1


async def test_wss_insecure_mode_connects_and_warns(tls: TLSMaterial):
    lines: list[str] = []
    handler_id = logger.add(lines.append, level="WARNING")
    try:
        async with tls_echo_server(tls.server_context) as server:
            await echo_round_trip(tls_transport(server.uri, ssl=False))
            assert server.connections == 1
    finally:
        logger.remove(handler_id)
    warnings = [line for line in lines if "WARNING" in line and "verification" in line.lower()]
    assert warnings, lines
    print("WARNING LOGGED:", warnings[0].strip())
    assert f"127.0.0.1:{server.port}" in warnings[0]


@pytest.mark.parametrize("ssl", [_UNSET, None, True], ids=["no-ssl-param", "None", "True"])
async def test_wss_untrusted_ca_fails_with_tls(tls: TLSMaterial, ssl, request):
    async with tls_echo_server(tls.server_context) as server:
        transport = tls_transport(server.uri, ssl=ssl)
        events: list[ConnectionFailure] = []

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            events.append(error)

        start = time.monotonic()
        async with run_pipeline(transport) as p:
            await p.wait(5.0)
            took = time.monotonic() - start
        assert server.connections == 0
    print(f"TIMING {request.node.name}: pipeline ended at {took:.3f}s")
    assert len(events) == 1
    assert events[0].kind is FailureKind.TLS
    assert "certificate" in str(events[0])
    assert len(p.errors) == 1
    assert p.errors[0].fatal is True
    assert "certificate" in p.errors[0].error
