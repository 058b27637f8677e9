"""An interruption while a chunk is blocked in its send: no error, nothing lost uncounted.

Defect 2 of the reliability issue:

- the ``InterruptionFrame`` reset the pace clock while ``_write_audio_chunk``
  was blocked in its send; ``PaceClock.sent()`` then raised ("called before
  delay()"), logged as an error, and the chunk never went downstream;
- an interruption message blocked behind a send on a connection that is then
  aborted was lost uncounted: websockets releases blocked sends without an
  error after an abort, so ``send`` returned True on a dead socket.
"""

from __future__ import annotations

import asyncio

from loguru import logger
from pipecat.frames.frames import InterruptionFrame, TTSAudioRawFrame

from harness import client_params, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from support.fault_proxy import FaultProxy
from support.restartable import RestartableServer
from support.servers import stop_reading_server

RATE, CHANNELS = 48000, 2


async def wait_until_blocked(transport: WebsocketClientTransport) -> float:
    await wait_for(lambda: transport.stats.audio_secs_sent > 1, 10)
    last = -1.0
    while transport.stats.audio_secs_sent != last:
        last = transport.stats.audio_secs_sent
        await asyncio.sleep(0.3)
    return last


async def test_interruption_while_a_chunk_is_blocked_in_its_send_logs_no_error():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m), level="ERROR")
    try:
        async with RestartableServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
            t = WebsocketClientTransport(
                proxy.uri(),
                client_params(
                    audio_out_sample_rate=RATE,
                    audio_out_channels=CHANNELS,
                    audio_out_10ms_chunks=100,  # 1 s chunks
                    audio_out_send_lead_secs=1000,  # no pacing: fill the buffers fast
                    write_timeout=30,
                ),
            )
            async with run_pipeline(t, rate=RATE) as p:
                await wait_for(lambda: t.session.is_connected, 5)
                proxy.stall()
                await p.send(TTSAudioRawFrame(bytes(120 * RATE * CHANNELS * 2), RATE, CHANNELS))
                sent_before = await wait_until_blocked(t)
                assert sent_before < 120  # a chunk is stuck in its send
                await p.send(InterruptionFrame())
                await asyncio.sleep(0.3)
                proxy.unstall()
                await p.send(TTSAudioRawFrame(bytes(2 * RATE * CHANNELS * 2), RATE, CHANNELS))
                await wait_for(lambda: t.stats.audio_secs_sent >= sent_before + 2, 20)
                await p.end()
    finally:
        logger.remove(sink)
    assert not [line for line in lines if "PaceClock" in line or "Error writing" in line]
    assert not lines
    assert not p.errors


async def test_message_released_by_an_abort_counts_as_not_sent():
    async with stop_reading_server() as server:
        t = WebsocketClientTransport(server.uri, client_params(reconnect=None))
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            blob = bytes(1 << 20)
            blocked = []
            for _ in range(200):
                task = asyncio.create_task(t.session.send(blob))
                await asyncio.sleep(0.02)
                if not task.done():
                    blocked.append(task)
                    break
            assert blocked, "the peer kept reading"
            behind = asyncio.create_task(t.session.send('{"event": "clear"}'))
            await asyncio.sleep(0.05)
            sent_before = t.stats.messages_out
            t.session.websocket.transport.abort()
            results = await asyncio.gather(blocked[0], behind)
            await p.wait(5)
    assert results == [False, False]  # neither reached the peer
    assert t.stats.messages_out == sent_before
