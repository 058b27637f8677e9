"""The test server's decoding of callers' messages (through the protocols' serializers)."""

from __future__ import annotations

import numpy as np
from pipecat.frames.frames import OutputAudioRawFrame, TextFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient.audio.wav import float_to_pcm
from pipecat_wsclient.protocols import RawPCMSerializer
from pipecat_wsclient.serve.audio import InboundAudio, make_tone

RATE = 16000


async def test_raw_is_a_byte_stream_split_samples_are_joined():
    inbound = InboundAudio(RawPCMSerializer(sample_rate=RATE), RATE)
    assert await inbound.decode(b"\x01\x02\x03") == b"\x01\x02"
    assert await inbound.decode(b"\x04") == b"\x03\x04"
    assert await inbound.decode(b"\x05") == b""
    assert await inbound.decode("{}") == b""  # text is not audio


async def test_pipecat_frames_other_than_audio_are_ignored():
    serializer = ProtobufFrameSerializer()
    inbound = InboundAudio(ProtobufFrameSerializer(), RATE)
    pcm = make_tone(0.1, 440, RATE)
    audio = await serializer.serialize(OutputAudioRawFrame(pcm, RATE, 1))
    text = await serializer.serialize(TextFrame("hello"))
    assert isinstance(audio, bytes) and isinstance(text, bytes)
    assert await inbound.decode(audio) == pcm
    assert await inbound.decode(text) == b""
    assert await inbound.decode(b"\xff garbage") == b""
    assert inbound.flush() == b""


async def test_other_rates_and_stereo_are_brought_to_mono_at_the_server_rate():
    serializer = ProtobufFrameSerializer()
    inbound = InboundAudio(ProtobufFrameSerializer(), RATE)
    mono = 0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)
    stereo = float_to_pcm(np.stack([mono, mono], axis=1).reshape(-1))
    data = await serializer.serialize(OutputAudioRawFrame(stereo, 8000, 2))
    assert isinstance(data, bytes)
    out = await inbound.decode(data) + inbound.flush()
    assert abs(len(out) // 2 - RATE) <= 2  # 1 s at 16 kHz
