"""The protobuf audio fast paths give exactly what Pipecat's serializer gives."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TextFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient.protobuf_audio import decode_audio, encode_audio, is_stock_protobuf


@pytest.mark.parametrize(
    ("audio", "rate", "channels"),
    [(bytes(range(256)) * 3, 16000, 1), (b"\x01\x02" * 160, 8000, 2), (b"", 24000, 1)],
)
async def test_encode_matches_serializer(audio: bytes, rate: int, channels: int):
    frame = OutputAudioRawFrame(audio=audio, sample_rate=rate, num_channels=channels)
    expected = await ProtobufFrameSerializer().serialize(frame)
    got = encode_audio(audio, rate, channels, frame_id=frame.id, name=frame.name)
    assert got == expected


async def test_encode_with_pts_matches_serializer():
    frame = OutputAudioRawFrame(audio=b"\x00\x01" * 80, sample_rate=8000, num_channels=1)
    frame.pts = 123456789
    expected = await ProtobufFrameSerializer().serialize(frame)
    got = encode_audio(frame.audio, 8000, 1, frame_id=frame.id, name=frame.name, pts=frame.pts)
    assert got == expected


async def test_decode_matches_serializer():
    sent = OutputAudioRawFrame(audio=b"\x10\x20" * 320, sample_rate=16000, num_channels=1)
    sent.pts = 42
    data = await ProtobufFrameSerializer().serialize(sent)
    assert isinstance(data, bytes)
    ours = decode_audio(data)
    theirs = await ProtobufFrameSerializer().deserialize(data)
    assert isinstance(ours, InputAudioRawFrame) and isinstance(theirs, InputAudioRawFrame)
    for field in ("audio", "sample_rate", "num_channels", "num_frames", "id", "name", "pts"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.id == sent.id and ours.audio == sent.audio


async def test_decode_leaves_other_frames_to_the_serializer():
    serializer = ProtobufFrameSerializer()
    for frame in (TextFrame(text="hi"), InterruptionFrame()):
        data = await serializer.serialize(frame)
        assert isinstance(data, bytes)
        assert decode_audio(data) is None
    assert decode_audio("text message") is None
    with pytest.raises(DecodeError):
        decode_audio(b"\xff\xff\xff")


def test_only_the_stock_serializer_takes_the_fast_path():
    class Custom(ProtobufFrameSerializer):
        pass

    assert is_stock_protobuf(ProtobufFrameSerializer())
    assert not is_stock_protobuf(Custom())
