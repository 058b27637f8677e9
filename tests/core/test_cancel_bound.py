"""CancelFrame ends the call within 1 s whatever the serializer, even when the peer stalled.

Defect 3 of the reliability issue: a telephony or Asterisk serializer sends
its hang-up on cancel, and that send was bounded by ``write_timeout`` (5 s)
instead of the cancel bound: measured 5.01 s (Twilio) and 5.00 s (Asterisk)
against 0.50 s for Protobuf. Here the peer stops reading and the socket's
buffers are filled first, so the hang-up cannot be written.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from pipecat.frames.frames import CancelFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import client_params, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.protocols import AsteriskSerializer, TwilioCarrierSerializer
from pipecat_wsclient.session import SessionState
from support.servers import stop_reading_server

MEDIA_START = (
    "MEDIA_START connection_id:c1 channel:WebSocket/INCOMING/0x1 channel_id:1.1 "
    "format:slin16 optimal_frame_size:640 ptime:20"
)
SERIALIZERS = {
    "protobuf": (ProtobufFrameSerializer, []),
    "twilio": (TwilioCarrierSerializer, []),
    "asterisk": (AsteriskSerializer, [MEDIA_START]),
}


async def fill_until_blocked(transport: WebsocketClientTransport) -> list[asyncio.Task]:
    """Send 1 MB messages until one does not return: the socket is full."""
    blob = bytes(1 << 20)
    tasks = []
    for _ in range(200):
        task = asyncio.create_task(transport.session.send(blob))
        tasks.append(task)
        await asyncio.sleep(0.02)
        if not task.done():
            return tasks
    raise AssertionError("the peer kept reading")


@pytest.mark.parametrize("name", list(SERIALIZERS))
async def test_cancel_with_a_stalled_peer_ends_within_one_second(name):
    cls, opening = SERIALIZERS[name]
    serializer = cls()
    async with stop_reading_server(send_on_connect=opening) as server:
        t = WebsocketClientTransport(server.uri, client_params(serializer=serializer))
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            if opening:
                await wait_for(lambda: serializer.media_start is not None, 5)
            blocked = await fill_until_blocked(t)
            start = time.monotonic()
            await p.worker.queue_frame(CancelFrame())
            await p.wait(10)
            took = time.monotonic() - start
        for task in blocked:
            task.cancel()
        await asyncio.gather(*blocked, return_exceptions=True)
    assert took < 1.0, f"{name}: cancel took {took:.2f}s"
    assert not p.errors  # an ending we asked for, not a failure
    assert t.session.state is SessionState.IDLE
    assert t.session.websocket is None
