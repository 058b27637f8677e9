"""One connection per transport, connection options, events and stats, against real servers."""

import asyncio

from pipecat.frames.frames import TTSAudioRawFrame

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from support.servers import echo_server


async def test_one_connection_dialed_once_closed_once():
    events = []
    async with echo_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())

        @t.event_handler("on_connected")
        async def on_connected(transport, websocket):
            events.append(("connected", websocket.state.name))

        @t.event_handler("on_disconnected")
        async def on_disconnected(transport, websocket):
            events.append(("disconnected", websocket.close_code))

        async with run_pipeline(t) as p:
            audio = pcm(0.4)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: p.collector.audio() == audio, 5)
            await p.end()
            # stop, then cleanup, on both processors: still one close.
            await t.input().cleanup()
            await t.output().cleanup()
        await wait_for(lambda: server.close_codes, 2)
    assert server.connections == 1
    assert server.close_codes == [1000]
    assert events == [("connected", "OPEN"), ("disconnected", 1000)]
    stats = t.stats
    assert stats.connects == 1 and stats.disconnects == 1
    assert stats.last_close_code == 1000


async def test_output_only_pipeline_connects_and_closes():
    async with echo_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t, with_input=False) as p:
            await p.send(TTSAudioRawFrame(pcm(0.2), RATE, 1))
            await wait_for(lambda: len(server.messages) >= 5, 5)
            await p.end()
        await wait_for(lambda: server.close_codes, 2)
    assert server.connections == 1 and server.close_codes == [1000]


async def test_static_and_provided_headers_user_agent_no_compression():
    calls = []

    async def provider():
        calls.append(1)
        return {"Authorization": f"Bearer token-{len(calls)}", "X-Static": "overridden"}

    async with echo_server() as server:
        for _ in range(2):
            t = WebsocketClientTransport(
                server.uri,
                client_params(
                    additional_headers={"X-Static": "static", "X-Call": "abc"},
                    headers_provider=provider,
                ),
            )
            async with run_pipeline(t) as p:
                await wait_for(lambda t=t: t.session.is_connected, 5)
                await p.end()
    first, second = server.request_headers
    assert first["authorization"] == "Bearer token-1"
    assert second["authorization"] == "Bearer token-2"
    assert first["x-call"] == "abc" and first["x-static"] == "overridden"
    assert first["user-agent"].startswith("pipecat-wsclient/")
    assert "sec-websocket-extensions" not in first


async def test_sync_headers_provider_and_deflate_opt_in():
    async with echo_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(headers_provider=lambda: {"X-Sync": "yes"}, compression="deflate"),
        )
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.end()
    [headers] = server.request_headers
    assert headers["x-sync"] == "yes"
    assert "permessage-deflate" in headers["sec-websocket-extensions"]


async def test_subprotocols_are_offered():
    async with echo_server(subprotocols=["voice.v2", "voice.v1"]) as server:
        t = WebsocketClientTransport(server.uri, client_params(subprotocols=["voice.v1"]))
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            assert t.session.websocket.subprotocol == "voice.v1"
            await p.end()
    assert server.subprotocols == ["voice.v1"]


async def test_stats_count_both_ways_and_ping_rtt():
    async with echo_server() as server:
        t = WebsocketClientTransport(server.uri, client_params(ping_interval=0.1, ping_timeout=1))
        async with run_pipeline(t) as p:
            audio = pcm(0.8)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: p.collector.audio() == audio, 5)
            await asyncio.sleep(0.3)
            stats = t.stats
            await p.end()
    sent = [m for _, m in server.received]
    assert stats.messages_out == len(sent) == 20
    assert stats.bytes_out == sum(len(m) for m in sent)
    assert stats.messages_in == stats.messages_out
    assert stats.bytes_in == stats.bytes_out
    assert abs(stats.audio_secs_sent - 0.8) < 1e-6
    assert stats.audio_frames_sent == 20
    assert abs(stats.audio_secs_received - 0.8) < 1e-6
    assert 0 < stats.connect_time_secs < 1
    assert stats.ping_rtt_secs is not None and 0 < stats.ping_rtt_secs < 0.5
    assert stats.decode_errors == stats.dropped_frames == 0
