"""Fault injection through a TCP proxy: stalls, half-open peers, flapping."""

from __future__ import annotations

import asyncio
import gc
import time

import psutil
import pytest
from pipecat.frames.frames import OutputTransportMessageUrgentFrame, TTSAudioRawFrame
from test_reconnect import Events, received_audio

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import FailureKind, WebsocketClientTransport
from pipecat_wsclient.params import ReconnectParams
from support.fault_proxy import FaultProxy
from support.restartable import RestartableServer


async def test_stalled_peer_noticed_by_keepalive_then_reconnected():
    ping = 0.5
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        t = WebsocketClientTransport(
            proxy.uri(),
            client_params(ping_interval=ping, ping_timeout=ping, close_timeout=0.5, open_timeout=1),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await wait_for(lambda: t.stats.ping_rtt_secs is not None, 3)
            stalled_at = time.monotonic()
            proxy.stall()
            await wait_for(lambda: events.reconnecting, 10)
            noticed = events.reconnecting[0][0] - stalled_at
            await asyncio.sleep(0.5)
            proxy.unstall()
            await wait_for(lambda: events.reconnected, 10)
            assert t.session.is_connected
            await p.end()
    # Within ping_interval + ping_timeout + close_timeout (+ scheduling slack).
    assert noticed <= 2 * ping + 0.5 + 0.5
    assert events.reconnecting[0][3].kind is FailureKind.KEEPALIVE
    assert not p.errors


async def test_half_open_peer_detected_by_write_timeout_and_reconnected():
    """A peer that takes data but stops reading: the write timeout counts as a lost link."""
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        t = WebsocketClientTransport(
            proxy.uri(),
            client_params(write_timeout=0.5, ping_interval=None, open_timeout=1),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            proxy.stall()
            big = {"blob": "x" * 1_000_000}
            for _ in range(30):
                await p.send(OutputTransportMessageUrgentFrame(message=big))
            await wait_for(lambda: events.reconnecting, 15)
            proxy.unstall()
            await wait_for(lambda: events.reconnected, 10)
            await p.end()
    assert events.reconnecting[0][3].kind is FailureKind.WRITE_TIMEOUT
    assert "stopped reading" in events.reconnecting[0][3].cause
    assert not p.errors


@pytest.mark.slow
async def test_flapping_ten_drops_in_thirty_seconds_no_leaks():
    clip_secs = 32.0
    clip = pcm(clip_secs, seed=31)
    process = psutil.Process()
    async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        t = WebsocketClientTransport(
            proxy.uri(),
            client_params(reconnect=ReconnectParams(first_delay_secs=0.05)),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(1.0)
            gc.collect()
            tasks_before = len(asyncio.all_tasks())
            rss_before = process.memory_info().rss
            for _ in range(10):
                await asyncio.sleep(2.9)
                reconnects = len(events.reconnected)
                proxy.drop()
                await wait_for(lambda n=reconnects: len(events.reconnected) > n, 5)
            await wait_for(lambda: t.stats.audio_secs_sent >= clip_secs - 0.2, 15)
            await asyncio.sleep(0.5)
            gc.collect()
            tasks_after = len(asyncio.all_tasks())
            rss_after = process.memory_info().rss
            stats = t.stats
            await p.end()
        received = await received_audio(server)
    assert len(events.reconnected) == 10
    assert not p.errors
    # The call went on: nearly all of the audio arrived (a RST can lose what
    # was in flight in the socket buffers at the moment of the drop).
    assert len(received) >= 0.97 * len(clip)
    assert stats.dropped_frames == 0
    assert abs(tasks_after - tasks_before) <= 2
    assert rss_after - rss_before < 20 * 2**20
