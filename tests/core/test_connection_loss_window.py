"""Audio written in the moment between a socket's death and the session noticing it.

websockets marks the connection closed as soon as the socket dies; the session
learns it when its receive task runs, a moment later. Audio written in between
must be held for the reconnection (and arrive), not dropped as if there had
never been a connection.
"""

import asyncio

from pipecat.frames.frames import OutputAudioRawFrame
from test_media_sender import received_audio
from websockets.protocol import State

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import SessionState, WebsocketClientTransport
from pipecat_wsclient.params import ReconnectParams
from support.servers import record_server


async def test_audio_written_as_the_socket_dies_is_held_not_dropped():
    async with record_server() as server:
        t = WebsocketClientTransport(
            server.uri, client_params(reconnect=ReconnectParams(first_delay_secs=0.05))
        )
        chunk = pcm(0.04, seed=7)
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            ws = t.session.websocket
            assert ws is not None
            ws.transport.abort()  # the socket dies (as on a reset)
            await asyncio.sleep(0)  # websockets sees it; the session not yet
            assert ws.state is State.CLOSED and t.session.state is SessionState.OPEN
            frame = OutputAudioRawFrame(chunk, RATE, 1)
            assert await t.output().write_audio_frame(frame)
            await wait_for(lambda: t.stats.connects == 2, 5)
            await wait_for(lambda: t.stats.audio_secs_sent > 0, 5)
            await p.end()
        received = await received_audio(server)
    assert t.stats.dropped_frames == 0
    assert received == chunk
