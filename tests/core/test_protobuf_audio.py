"""The protobuf audio fast paths give exactly what Pipecat's serializer gives."""

from __future__ import annotations

import pipecat.frames.protobufs.frames_pb2 as frame_protos
import pytest
from google.protobuf.message import DecodeError
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TextFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient.protobuf_audio import (
    decode_audio,
    decodes_as_stock_protobuf,
    encode_audio,
    is_stock_protobuf,
)


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


def test_a_subclass_that_keeps_deserialize_decodes_on_the_fast_path():
    """Found by the generated calls: a subclass that only adds outgoing messages got
    Pipecat's ERROR line for every empty or unknown message it received."""

    class Outgoing(ProtobufFrameSerializer):
        async def serialize(self, frame):
            return await super().serialize(frame)

    class Incoming(ProtobufFrameSerializer):
        async def deserialize(self, data):
            return await super().deserialize(data)

    assert decodes_as_stock_protobuf(ProtobufFrameSerializer())
    assert decodes_as_stock_protobuf(Outgoing())
    assert not decodes_as_stock_protobuf(Incoming())


def message_frame(data: str) -> bytes:
    message = frame_protos.MessageFrame(data=data)  # type: ignore[attr-defined]
    return frame_protos.Frame(message=message).SerializeToString()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08\x01",
        message_frame("not json"),
        message_frame("[" * 100 + "]" * 100),
        message_frame("[" * 3000 + "]" * 3000),
    ],
    ids=["empty", "unknown field", "message not JSON", "message 100 deep", "message 3000 deep"],
)
def test_decode_refuses_what_the_serializer_drops_with_an_error_line(data: bytes):
    """Found by fuzzing the transport. Pipecat's serializer logs an ERROR line and
    returns None for each of these, once per message, except the transport message
    nested 100 deep, which it delivers (nested some 980 deep, such a frame cannot be
    printed further down the pipeline). The fast path raises ValueError for all of
    them: the input counts a decode error, logged at a limited rate."""
    with pytest.raises(ValueError):
        decode_audio(data)


def test_decode_leaves_valid_transport_messages_to_the_serializer():
    assert decode_audio(message_frame('{"a": [1, 2]}')) is None
    assert decode_audio(message_frame("null")) is None
