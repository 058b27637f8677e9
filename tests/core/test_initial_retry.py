"""With ``retry_initial_connect``, audio written during the first dial waits for it.

Defect 8 of the reliability issue: the first dial's retries ran in the
RECONNECTING state, so the first audio went through the outage buffer
(2 s by default, real-time paced) and the oldest was dropped, even though
the server answered within ``open_timeout``. As the README says, audio
written while the first dial is in progress waits for it.
"""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import TTSAudioRawFrame
from test_reconnect import Events, received_audio

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.params import ReconnectParams
from support.restartable import RestartableServer


@pytest.mark.slow
async def test_audio_waits_for_a_retried_first_dial_and_none_is_dropped():
    clip = pcm(3.0, seed=41)
    server = RestartableServer()  # not listening yet: the first dials are refused
    try:
        t = WebsocketClientTransport(
            server.uri,
            client_params(
                open_timeout=5.0,
                reconnect=ReconnectParams(retry_initial_connect=True, buffer_audio_secs=2.0),
            ),
        )
        events = Events(t)
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(clip, RATE, 1))
            await asyncio.sleep(2.5)  # longer than the outage buffer
            assert not t.session.is_connected
            await server.start()
            await wait_for(lambda: t.stats.audio_secs_sent >= 3.0 - 1e-6, 15)
            await p.end()
        received = await received_audio(server)
    finally:
        await server.stop()
    assert t.stats.dropped_frames == 0 and t.stats.dropped_audio_secs == 0
    assert received == clip  # all of it, in order
    assert events.reconnecting  # the first dial was retried
    assert not p.errors
