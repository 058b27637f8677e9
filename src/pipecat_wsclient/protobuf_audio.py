#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio through Pipecat's protobuf wire format, without the per-call reflection.

Pipecat's ``ProtobufFrameSerializer`` (the default serializer) walks every
dataclass field of a frame, and every field of the message descriptor, on
each call: for 20 ms audio chunks, a few percent of the client's CPU. For
audio with the stock serializer, these functions build and read the same
message with the same generated protobuf classes: the same bytes out and the
same frame in (``tests/test_protobuf_audio.py`` compares them with the
serializer). Anything else goes to the serializer. Pure, no I/O (but for
reading Pipecat's source once, to check the serializer is still the one
these copy: :mod:`pipecat_wsclient.upstream`).
"""

from __future__ import annotations

import pipecat.frames.protobufs.frames_pb2 as frame_protos
from pipecat.frames.frames import InputAudioRawFrame
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient import peer_json, upstream


def is_stock_protobuf(serializer: FrameSerializer) -> bool:
    """Whether ``serializer`` is Pipecat's protobuf serializer itself (not a subclass).

    Args:
        serializer: The transport's serializer.

    Returns:
        True when the fast paths here give exactly what it would: False too
        if the installed Pipecat's serializer code differs from the code
        these functions copy (``upstream.fits("protobuf")``).
    """
    return type(serializer) is ProtobufFrameSerializer and upstream.fits("protobuf")


def decodes_as_stock_protobuf(serializer: FrameSerializer) -> bool:
    """Whether ``serializer`` deserializes as Pipecat's protobuf serializer does.

    True for Pipecat's class and for subclasses that do not override
    ``deserialize`` (e.g. one that only adds outgoing messages), so
    :func:`decode_audio` applies to what they receive.

    Args:
        serializer: The transport's serializer.

    Returns:
        True when :func:`decode_audio` gives what its ``deserialize`` would.
    """
    return (
        isinstance(serializer, ProtobufFrameSerializer)
        and type(serializer).deserialize is ProtobufFrameSerializer.deserialize
        and upstream.fits("protobuf")
    )


def encode_audio(
    audio: bytes,
    sample_rate: int,
    num_channels: int,
    *,
    frame_id: int = 0,
    name: str = "",
    pts: int | None = None,
) -> bytes:
    """Encode an audio frame as ``ProtobufFrameSerializer.serialize`` does.

    As there, fields with a falsy value are left out (proto3 does not write
    them; ``pts`` is the one field with presence, set only when given).

    Args:
        audio: PCM bytes (or a WAV file).
        sample_rate: Sample rate in Hz.
        num_channels: Number of channels.
        frame_id: The frame's id.
        name: The frame's name.
        pts: The frame's presentation timestamp, if any.

    Returns:
        The serialized ``Frame`` message.
    """
    fields = frame_protos.AudioRawFrame(  # type: ignore[attr-defined]
        id=frame_id, name=name, audio=audio, sample_rate=sample_rate, num_channels=num_channels
    )
    if pts:
        fields.pts = pts
    return frame_protos.Frame(audio=fields).SerializeToString()  # type: ignore[attr-defined]


def decode_audio(data: str | bytes) -> InputAudioRawFrame | None:
    """Decode ``data`` as ``ProtobufFrameSerializer.deserialize`` does, if it holds audio.

    Args:
        data: A received message.

    Returns:
        The ``InputAudioRawFrame`` the serializer would return, or None when
        ``data`` is not a binary audio message (then ask the serializer).

    Raises:
        google.protobuf.message.DecodeError: ``data`` is not a protobuf message.
        ValueError: ``data`` is a message the serializer would drop with an
            ERROR log line each time: no frame it can deserialize in it (an
            empty message, unknown fields only), or a transport message whose
            data is not JSON; or one nested deeper than
            :data:`~pipecat_wsclient.peer_json.MAX_DEPTH`, which it would
            deliver, but a frame the pipeline cannot print (``RecursionError``).
            The input counts these as decode errors, logged at a limited rate.
    """
    if not isinstance(data, bytes):
        return None
    message = frame_protos.Frame.FromString(data)  # type: ignore[attr-defined]
    which = message.WhichOneof("frame")
    if which != "audio":
        _check_deserializable(message, which)
        return None
    fields = message.audio
    frame = InputAudioRawFrame(
        audio=fields.audio, sample_rate=fields.sample_rate, num_channels=fields.num_channels
    )
    if fields.id:
        frame.id = fields.id
    if fields.name:
        frame.name = fields.name
    if fields.pts:
        frame.pts = fields.pts
    return frame


def _check_deserializable(message, which: str | None) -> None:
    """Raise ValueError for what ``ProtobufFrameSerializer.deserialize`` logs an ERROR for."""
    if which not in ProtobufFrameSerializer.DESERIALIZABLE_FIELDS:
        raise ValueError(f"no frame Pipecat's protobuf serializer can deserialize ({which})")
    if which == "message":
        try:
            peer_json.loads(message.message.data)
        except ValueError as e:
            raise ValueError(f"transport message data: {e}") from None
