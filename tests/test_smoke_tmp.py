import asyncio

from harness import RATE, pcm, run_pipeline, wait_for
from pipecat.frames.frames import OutputAudioRawFrame, TTSAudioRawFrame
from support.servers import echo_server, refused_uri

from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport


async def test_echo_roundtrip():
    async with echo_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            WebsocketClientParams(audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False),
        )
        async with run_pipeline(t) as p:
            audio = pcm(1.0)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: len(p.collector.audio()) >= len(audio), 5)
            assert p.collector.audio()[: len(audio)] == audio
            took = await p.end()
            print("end took", took, t.stats)
        assert server.connections == 1
        print(server.close_codes)


async def test_refused():
    t = WebsocketClientTransport(refused_uri() + "?token=SECRET", WebsocketClientParams())
    async with run_pipeline(t) as p:
        took = await p.wait(5)
        print("took", took, [e.error for e in p.errors])
