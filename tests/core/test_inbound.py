"""Inbound messages from real servers: audio, transport messages, junk, early and oversize."""

import json

from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputTransportMessageFrame,
    OutputAudioRawFrame,
    TextFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from support.servers import junk_server, record_server


async def audio_msg(audio: bytes) -> bytes:
    return await ProtobufFrameSerializer().serialize(OutputAudioRawFrame(audio, RATE, 1))


async def message_msg(message: dict) -> bytes:
    from pipecat.frames.frames import OutputTransportMessageFrame

    return await ProtobufFrameSerializer().serialize(OutputTransportMessageFrame(message=message))


async def test_audio_and_messages_are_delivered_in_order():
    a1, a2 = pcm(0.1, seed=1), pcm(0.1, seed=2)
    msgs = [await audio_msg(a1), await message_msg({"hello": 1}), await audio_msg(a2)]
    async with record_server(send_on_connect=msgs) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: len(p.collector.audio()) == len(a1) + len(a2), 5)
            await wait_for(lambda: p.collector.of(InputTransportMessageFrame), 5)
            assert p.collector.audio() == a1 + a2
            [m] = p.collector.of(InputTransportMessageFrame)
            assert m.message == {"hello": 1}
            assert t.stats.audio_secs_received == 0.2
            # Audio is pushed as it arrives, not behind a queue: the order holds.
            kinds = [
                type(f).__name__
                for _, f in p.collector.frames
                if isinstance(f, (InputAudioRawFrame, InputTransportMessageFrame))
            ]
            assert kinds == [
                "InputAudioRawFrame",
                "InputTransportMessageFrame",
                "InputAudioRawFrame",
            ]
            await p.end()


async def test_garbage_is_counted_and_the_next_message_still_arrives():
    good = pcm(0.1, seed=3)
    valid = await audio_msg(good)
    junk = [b"\xff\xfe garbage \x00", "unexpected text", valid[: len(valid) // 2], valid]
    async with junk_server(junk, then_echo=False) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: p.collector.audio() == good, 5)
            assert t.stats.decode_errors == 3
            assert t.stats.messages_in == 4
            assert not p.errors
            await p.end()


async def test_message_before_ready_is_held_and_delivered():
    early = pcm(0.05, seed=4)
    async with record_server() as server:
        t2 = WebsocketClientTransport(server.uri, client_params())
        # Delivered by the session before the pipeline has even started.
        await t2.input().on_message(None, await audio_msg(early))
        async with run_pipeline(t2) as p:
            await wait_for(lambda: p.collector.audio() == early, 5)
            await p.end()


async def test_audio_message_without_audio_is_skipped():
    """As Pipecat's input does: a received audio frame with no audio is not pushed."""
    msgs = [await audio_msg(b""), await audio_msg(pcm(0.1)), await message_msg({"after": "audio"})]
    async with record_server(send_on_connect=msgs) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: p.collector.of(InputTransportMessageFrame), 5)
            assert [len(f.audio) for f in p.collector.of(InputAudioRawFrame)] == [len(pcm(0.1))]
            await p.end()


async def test_audio_in_filter_applies():
    class Halve(BaseAudioFilter):
        async def start(self, sample_rate):
            pass

        async def stop(self):
            pass

        async def process_frame(self, frame):
            pass

        async def filter(self, audio: bytes) -> bytes:
            return audio[: len(audio) // 2]

    audio = pcm(0.1)
    async with record_server(send_on_connect=[await audio_msg(audio)]) as server:
        t = WebsocketClientTransport(server.uri, client_params(audio_in_filter=Halve()))
        async with run_pipeline(t) as p:
            await wait_for(lambda: p.collector.audio(), 5)
            assert p.collector.audio() == audio[: len(audio) // 2]
            await p.end()


async def test_passthrough_off_keeps_audio_out_of_the_pipeline():
    msgs = [await audio_msg(pcm(0.1)), await message_msg({"after": "audio"})]
    async with record_server(send_on_connect=msgs) as server:
        t = WebsocketClientTransport(server.uri, client_params(audio_in_passthrough=False))
        async with run_pipeline(t) as p:
            await wait_for(lambda: p.collector.of(InputTransportMessageFrame), 5)
            assert not p.collector.of(InputAudioRawFrame)
            assert t.stats.audio_secs_received == 0.1
            await p.end()


async def test_other_frames_are_pushed():
    text = await ProtobufFrameSerializer().serialize(TextFrame("hi there"))
    async with record_server(send_on_connect=[text]) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: p.collector.of(TextFrame), 5)
            assert [f.text for f in p.collector.of(TextFrame)] == ["hi there"]
            await p.end()


async def test_outbound_messages_reach_server():
    from pipecat.frames.frames import OutputTransportMessageUrgentFrame

    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(OutputTransportMessageUrgentFrame(message={"n": 1}))
            await wait_for(lambda: server.messages, 5)
            await p.end()
    frame = await ProtobufFrameSerializer().deserialize(server.messages[0])
    assert isinstance(frame, InputTransportMessageFrame)
    assert frame.message == {"n": 1}
    assert json.dumps(frame.message) == '{"n": 1}'
