"""Calls that survive the network: reconnection and outage buffering against real faults."""

from __future__ import annotations

import asyncio
import time

import pytest
from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame, TTSAudioRawFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import (
    ConnectionFailure,
    FailureKind,
    WebsocketClientTransport,
)
from pipecat_wsclient.params import ReconnectParams
from support.restartable import RestartableServer, status_then_accept

BPS = 2 * RATE  # bytes per second of 16 kHz mono


class Events:
    """What the transport reported, with monotonic times."""

    def __init__(self, transport: WebsocketClientTransport):
        self.reconnecting: list[tuple[float, int, float, ConnectionFailure]] = []
        self.reconnected: list[tuple[float, int, float]] = []
        self.disconnected: list[tuple[float, int | None]] = []
        self.errors: list[ConnectionFailure] = []
        self.connected = 0

        @transport.event_handler("on_connected")
        async def on_connected(_t, _ws):
            self.connected += 1

        @transport.event_handler("on_reconnecting")
        async def on_reconnecting(_t, attempt, delay, cause):
            self.reconnecting.append((time.monotonic(), attempt, delay, cause))

        @transport.event_handler("on_reconnected")
        async def on_reconnected(_t, attempt, downtime):
            self.reconnected.append((time.monotonic(), attempt, downtime))

        @transport.event_handler("on_disconnected")
        async def on_disconnected(_t, ws):
            self.disconnected.append((time.monotonic(), ws.close_code))

        @transport.event_handler("on_connection_error")
        async def on_error(_t, error):
            self.errors.append(error)


async def received_audio(server) -> bytes:
    serializer = ProtobufFrameSerializer()
    out = bytearray()
    for message in server.messages:
        frame = await serializer.deserialize(message)
        if isinstance(frame, InputAudioRawFrame):
            out.extend(frame.audio)
    return bytes(out)


async def right_after_a_message(server, timeout: float = 5.0) -> None:
    """Return just after the server got a message: none is in flight for ~40 ms."""
    count = len(server.received)
    await wait_for(lambda: len(server.received) > count, timeout, interval=0.001)


def assert_one_gap(received: bytes, clip: bytes, gap: int) -> None:
    """``received`` is ``clip`` with one contiguous run of ``gap`` bytes missing."""
    assert len(received) + gap == len(clip)
    prefix = 0
    while prefix < len(received) and received[prefix] == clip[prefix]:
        prefix += 1
    assert received[prefix:] == clip[prefix + gap :]


async def stream_through_outage(outage: float, clip_secs: float, **params):
    clip = pcm(clip_secs, seed=11)
    async with RestartableServer() as server:
        t = WebsocketClientTransport(server.uri, client_params(**params))
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(1.0)
            await right_after_a_message(server)
            await server.stop(graceful=False)
            await asyncio.sleep(outage)
            await server.start()
            await wait_for(lambda: events.reconnected, 10)

            def done():
                s = t.stats
                return s.audio_secs_sent + s.dropped_audio_secs >= clip_secs - 1e-6

            await wait_for(done, clip_secs + 10)
            await asyncio.sleep(0.2)
            stats = t.stats
            await p.end()
        received = await received_audio(server)
    return clip, received, stats, events, p


@pytest.mark.slow
async def test_short_outage_loses_nothing_and_reconnects_fast():
    first = 0.05
    clip, received, stats, events, p = await stream_through_outage(
        0.5, 4.0, reconnect=ReconnectParams(first_delay_secs=first)
    )
    assert received == clip  # all of it, in order, exactly once
    assert stats.dropped_frames == 0 and stats.dropped_audio_secs == 0
    assert not p.errors and not events.errors
    assert events.connected == 1
    [(_, attempt, downtime)] = events.reconnected
    # Attempts came first_delay, then doubling (+/- jitter), all refused while down.
    assert [a for _, a, _, _ in events.reconnecting] == list(range(1, attempt + 1))
    assert events.reconnecting[0][2] == first
    assert events.reconnecting[0][3].close_code == 1006
    assert 0.5 <= downtime <= 0.5 + 0.5
    assert len(events.disconnected) == 2  # the lost one and the final close


@pytest.mark.slow
async def test_long_outage_loses_exactly_what_it_reports():
    clip, received, stats, _, p = await stream_through_outage(
        3.0, 6.0, reconnect=ReconnectParams(buffer_audio_secs=1.0)
    )
    dropped = round(stats.dropped_audio_secs * BPS)
    # Outage (3 s, + up to max_delay_secs=1 s until the next attempt) minus the
    # 1 s buffer was dropped, the oldest first.
    assert 1.7 * BPS <= dropped <= 3.3 * BPS
    assert_one_gap(received, clip, dropped)
    assert not p.errors


async def test_server_restart_reconnects_within_first_delay_plus_50ms():
    first = 0.05
    clip = pcm(3.0, seed=12)
    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri, client_params(reconnect=ReconnectParams(first_delay_secs=first))
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(0.5)
            await right_after_a_message(server)
            await server.stop(graceful=True)  # 1012 service restart
            await server.start()
            await wait_for(lambda: events.reconnected, 5)
            since_back = events.reconnected[0][0] - server.started_at
            await wait_for(lambda: t.stats.audio_secs_sent >= 3.0 - 1e-6, 10)
            await p.end()
        received = await received_audio(server)
    assert since_back <= first + 0.05
    assert events.reconnecting[0][3].close_code == 1012
    assert received == clip
    assert server.connections == 2


async def test_503_three_times_then_accepts():
    gate = status_then_accept([])
    async with RestartableServer(process_request=gate) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            gate.statuses.extend([503, 503, 503])
            await server.stop(graceful=True)
            await server.start()
            await wait_for(lambda: events.reconnected, 10)
            await p.end()
    causes = [cause for _, _, _, cause in events.reconnecting]
    assert causes[0].close_code == 1012
    assert [c.status_code for c in causes[1:]] == [503, 503, 503]
    assert events.reconnected[0][1] == 4
    assert not p.errors and not events.errors


async def test_401_on_reconnect_is_not_retried():
    gate = status_then_accept([])
    async with RestartableServer(process_request=gate) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            gate.statuses.extend([401] * 10)
            await server.stop(graceful=True)
            await server.start()
            await p.wait(10)
    assert len(events.reconnecting) == 1  # the drop was retried, the 401 was not
    [error] = events.errors
    assert error.kind is FailureKind.HTTP_STATUS and error.status_code == 401
    [frame] = p.errors
    assert frame.fatal and "HTTP 401" in frame.error
    assert gate.attempts == 2  # the first connection and one reconnect attempt
    assert "not retried" in frame.error


async def test_gives_up_after_max_attempts_naming_last_cause():
    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(reconnect=ReconnectParams(max_attempts=3, first_delay_secs=0.01)),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await server.stop()
            await p.wait(10)
    assert len(events.reconnecting) == 3
    [frame] = p.errors
    assert frame.fatal
    assert "gave up reconnecting after 3 attempts" in frame.error
    assert "connection refused" in frame.error


async def test_headers_provider_and_session_start_run_on_every_connection():
    calls = []

    def headers():
        calls.append(len(calls) + 1)
        return {"Authorization": f"Bearer t{len(calls)}"}

    hello = '{"event": "start"}'
    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(headers_provider=headers, session_start_messages=lambda: [hello]),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await wait_for(lambda: server.messages, 5)
            await server.stop(graceful=True)
            await server.start()
            await wait_for(lambda: events.reconnected, 5)
            await wait_for(lambda: len(server.messages) == 2, 5)
            await p.end()
    assert [h["authorization"] for h in server.request_headers] == ["Bearer t1", "Bearer t2"]
    assert server.messages == [hello, hello]


@pytest.mark.slow
async def test_interruption_during_outage_discards_held_audio():
    old, new = pcm(3.0, seed=21), pcm(0.4, seed=22)
    async with RestartableServer() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(old, RATE, 1))
            await asyncio.sleep(0.5)
            await right_after_a_message(server)
            await server.stop()
            before = await received_audio(server)
            await asyncio.sleep(0.8)  # ~0.8 s of `old` held
            await p.worker.queue_frame(InterruptionFrame())
            await asyncio.sleep(0.1)
            await p.send(TTSAudioRawFrame(new, RATE, 1))
            await asyncio.sleep(0.3)
            await server.start()
            await wait_for(lambda: events.reconnected, 5)
            await wait_for(lambda: len(server.messages) > 0, 5)
            await asyncio.sleep(1.0)
            await p.end()
        everything = await received_audio(server)
    # What was sent before the outage, then only the new utterance: nothing of
    # the interrupted one held during the outage was played after it.
    assert before and before == old[: len(before)]
    assert everything == before + new
    assert t.stats.interrupted_audio_secs >= 0.5
    assert t.stats.dropped_frames == 0


async def test_cancel_during_reconnect_wait_ends_within_one_second():
    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri, client_params(reconnect=ReconnectParams(first_delay_secs=10))
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await server.stop()
            await wait_for(lambda: events.reconnecting, 5)
            start = time.monotonic()
            await p.worker.cancel()
            await p.wait(5)
            took = time.monotonic() - start
    assert took < 1.0


@pytest.mark.parametrize("reconnect", [None])
async def test_no_reconnect_when_disabled(reconnect):
    async with RestartableServer() as server:
        t = WebsocketClientTransport(server.uri, client_params(reconnect=reconnect))
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await server.stop(graceful=True)
            await p.wait(5)
    assert not events.reconnecting
    assert p.errors[0].fatal and "1012" in p.errors[0].error


async def test_restart_behind_a_proxy_is_redialed_not_fatal():
    """A load balancer in front of a restarting server accepts TCP, then closes it.

    Found by the generated calls (issue 13): the handshake then ends in EOF
    ("connection closed while reading HTTP status line"), which was classed as
    an invalid handshake, not retried: a fatal error instead of a reconnect.
    """
    from support.fault_proxy import FaultProxy

    clip = pcm(1.5, seed=13)
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        t = WebsocketClientTransport(
            proxy.uri(), client_params(reconnect=ReconnectParams(first_delay_secs=0.05))
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(0.3)
            await server.stop(graceful=True)
            await asyncio.sleep(0.4)  # redials reach the proxy, which finds no server
            await server.start()
            await wait_for(lambda: events.reconnected, 5)
            await wait_for(lambda: t.stats.audio_secs_sent >= 1.5 - 1e-6, 10)
            await p.end()
    handshake_eofs = [c for _, _, _, c in events.reconnecting if "opening handshake" in str(c)]
    assert handshake_eofs, [str(c) for _, _, _, c in events.reconnecting]
    assert all(c.kind is FailureKind.NETWORK for c in handshake_eofs)
    assert not events.errors and not p.errors
