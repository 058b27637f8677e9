"""Pipecat's own server transport as the peer, in a subprocess."""

import pytest
from pipecat.frames.frames import TTSAudioRawFrame

from harness import RATE, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport
from support.processes import pipecat_echo_server

pytestmark = pytest.mark.slow  # Pipecat's server transport in a subprocess


async def test_five_seconds_through_pipecat_server_come_back_byte_exact():
    audio = pcm(5.0, seed=7)
    with pipecat_echo_server() as uri:
        t = WebsocketClientTransport(
            uri,
            WebsocketClientParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,  # Pipecat's server would play the header as audio
                audio_out_end_silence_secs=0,
            ),
        )
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: len(p.collector.audio()) >= len(audio), 15)
            await p.end()
    echoed = p.collector.audio()
    assert echoed[: len(audio)] == audio
    assert not any(echoed[len(audio) :])  # at most the server's zero padding after
    assert not p.errors


async def test_wav_header_default_is_played_by_pipecat_server():
    """The documented trap: with add_wav_header=True every chunk carries 44 header bytes."""
    audio = pcm(0.4, seed=8)
    with pipecat_echo_server() as uri:
        t = WebsocketClientTransport(
            uri,
            WebsocketClientParams(
                audio_in_enabled=True, audio_out_enabled=True, audio_out_end_silence_secs=0
            ),
        )
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: len(p.collector.audio()) >= len(audio), 15)
            await p.end()
    echoed = p.collector.audio()
    assert echoed[:4] == b"RIFF"
    assert echoed[: len(audio)] != audio
