"""Hypothesis strategies for inbound messages, per protocol (issues 12 and 13).

Shared by the serializer-level fuzz tests (``tests/protocols/test_protocols_fuzz.py``)
and the transport-level ones (``tests/core/test_inbound_fuzz.py``): random text
and bytes, JSON of every shape (including nesting deeper than Python's JSON
parser goes), and, per protocol, valid messages with random field values and
mutations of valid encodings (truncated, bit-flipped, concatenated).
"""

from __future__ import annotations

import base64
import json

import pipecat.frames.protobufs.frames_pb2 as frame_protos
from hypothesis import strategies as st

from pipecat_wsclient.protocols.asterisk import EVENTS

# -- JSON ---------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, opener: str) -> str:
    """JSON nested ``depth`` levels deep: ``[[[...]]]`` or ``{"a":{"a":...}}``."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


deep_json = st.builds(
    nested,
    st.sampled_from([63, 64, 65, 200, 900, 960, 970, 980, 990, 1000, 3000])
    | st.integers(min_value=60, max_value=4000),
    st.sampled_from("[{"),
)
"""JSON nested deep: around the bound we accept (64 levels), deeper than a frame can be
printed (about 970), deeper than Python's parser recurses (about 1000)."""


def deep_in(key: str, value: str | None = None) -> st.SearchStrategy[str]:
    """An object whose ``key`` is ``value`` and ``"x"`` deep JSON (or ``key`` deep JSON)."""
    if value is None:
        return deep_json.map(lambda deep: f'{{"{key}":{deep}}}')
    return deep_json.map(lambda deep: f'{{"{key}":"{value}","x":{deep}}}')


# -- carriers -------------------------------------------------------------------------

base64_text = st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode())
payloads = base64_text | st.text(max_size=20) | json_values

CARRIER_EVENTS = ["media", "mark", "clear", "playAudio", "checkpoint", "clearAudio", "stop"]
carrier_json = st.fixed_dictionaries(
    {"event": st.sampled_from(CARRIER_EVENTS) | json_values},
    optional={
        "media": st.fixed_dictionaries(
            {},
            optional={
                "payload": payloads,
                "contentType": st.sampled_from(["audio/x-mulaw", "audio/x-l16"]) | json_values,
                "sampleRate": st.sampled_from([8000, 16000, "8000", "x", 0]) | json_values,
            },
        )
        | json_values,
        "mark": st.fixed_dictionaries({}, optional={"name": json_values}) | json_values,
        "name": json_values,
        "streamSid": json_values,
    },
)
vonage_json = st.fixed_dictionaries(
    {"action": st.sampled_from(["clear", "notify"]) | json_values},
    optional={"payload": json_values},
)

messages_any = (
    st.text(max_size=60)
    | st.binary(max_size=700)
    | json_values.map(json.dumps)
    | carrier_json.map(json.dumps)
    | vonage_json.map(json.dumps)
)
"""Anything a carrier (or any protocol) may be sent: random, JSON, carrier events."""

deep_messages = (
    deep_json
    | deep_in("event", "media")
    | deep_in("media")
    | deep_in("action", "notify")
    | deep_in("payload")
    | deep_json.map(lambda deep: f'{{"action":"notify","payload":{deep}}}')
)
"""Messages with JSON nested too deep to parse, plain and inside the carriers' events."""

# -- Asterisk ---------------------------------------------------------------------------

ASTERISK_KEYS = [
    "connection_id",
    "channel",
    "channel_id",
    "format",
    "optimal_frame_size",
    "ptime",
    "digit",
    "xon_level",
    "queue_length",
    "error_text",
    "correlation_id",
    "channel_variables",
]
asterisk_values = (
    st.sampled_from(["ulaw", "alaw", "slin16", "slin", "opus", "0", "-160", "160", "1e9", ""])
    | st.integers(min_value=-(10**12), max_value=10**12).map(str)
    | st.text(max_size=12).filter(lambda t: not any(c.isspace() for c in t))
)


def asterisk_plain_events(names: list[str]) -> st.SearchStrategy[str]:
    """Plain-text events ``NAME key:value ...`` named from ``names`` or at random."""
    return st.builds(
        lambda name, pairs: " ".join([name, *(f"{k}:{v}" for k, v in pairs)]),
        st.sampled_from(names) | st.text(max_size=12),
        st.lists(st.tuples(st.sampled_from(ASTERISK_KEYS), asterisk_values), max_size=6),
    )


def asterisk_json_events(names: list[str]) -> st.SearchStrategy[str]:
    """JSON events ``{"event": NAME, ...}`` named from ``names`` or with any JSON value."""
    return st.builds(
        lambda name, fields: json.dumps({"event": name, **fields}),
        st.sampled_from(names) | json_values,
        st.dictionaries(st.sampled_from(ASTERISK_KEYS), json_values | asterisk_values, max_size=6),
    )


asterisk_plain = asterisk_plain_events(sorted(EVENTS))
asterisk_json = asterisk_json_events(sorted(EVENTS))

media_start_numbers = (
    st.integers(min_value=-(10**6), max_value=10**6)
    | st.sampled_from([0, 160, 320, 640, 65501, 10**9])
    | json_values
)
asterisk_media_start = st.builds(
    lambda fmt, size, ptime, extra: json.dumps(
        {"event": "MEDIA_START", "format": fmt, "optimal_frame_size": size, "ptime": ptime, **extra}
    ),
    st.sampled_from(["ulaw", "alaw", "slin16", "slin48", "opus"]) | json_values,
    media_start_numbers,
    media_start_numbers,
    st.dictionaries(st.sampled_from(ASTERISK_KEYS), json_values, max_size=2),
) | st.builds(
    lambda fmt, size, ptime: f"MEDIA_START format:{fmt} optimal_frame_size:{size} ptime:{ptime}",
    st.sampled_from(["ulaw", "slin16", "opus"]) | asterisk_values,
    asterisk_values,
    asterisk_values,
)

asterisk_messages = (
    asterisk_media_start
    | asterisk_plain
    | asterisk_json
    | st.binary(max_size=700)
    | messages_any
    | deep_in("event", "STATUS")
)
"""What an Asterisk channel may be sent: events (``MEDIA_START`` too), media, anything."""

_NOT_STARTING = sorted(EVENTS - {"MEDIA_START"})
asterisk_messages_before_start = (
    asterisk_plain_events(_NOT_STARTING)
    | asterisk_json_events(_NOT_STARTING)
    | st.binary(max_size=700)
    | messages_any
    | deep_in("event", "STATUS")
)
"""As :data:`asterisk_messages`, with no ``MEDIA_START``: the stream never starts."""

# -- raw PCM ------------------------------------------------------------------------------

raw_messages = (
    st.binary(max_size=700)
    | st.text(max_size=60)
    | json_values.map(json.dumps)
    | deep_json
    | st.sampled_from([b"", "", "null", "[]", "{}", '"x"', "1e400", "NaN"])
)
"""Binary audio of any length (odd ones too), text that is JSON or not, too deep."""

# -- Pipecat's protobuf frames --------------------------------------------------------------

u32 = st.integers(min_value=0, max_value=2**32 - 1) | st.sampled_from(
    [0, 1, 2, 8000, 16000, 48000, 2**31, 2**32 - 1]
)
u64 = st.integers(min_value=0, max_value=2**64 - 1) | st.sampled_from([0, 1, 2**63, 2**64 - 1])
names = st.text(max_size=12)


def _audio(audio: bytes, rate: int, channels: int, frame_id: int, name: str, pts: int | None):
    fields = frame_protos.AudioRawFrame(  # type: ignore[attr-defined]
        id=frame_id, name=name, audio=audio, sample_rate=rate, num_channels=channels
    )
    if pts is not None:
        fields.pts = pts
    return frame_protos.Frame(audio=fields).SerializeToString()  # type: ignore[attr-defined]


proto_audio = st.builds(
    _audio,
    st.binary(max_size=700),  # odd lengths too
    u32,
    u32 | st.sampled_from([1, 1, 2]),
    u64,
    names,
    st.none() | u64,
)
"""Audio frames with any field values: rate or channels 0 or huge, odd-length audio."""

proto_text = st.builds(
    lambda frame_id, name, text: frame_protos.Frame(  # type: ignore[attr-defined]
        text=frame_protos.TextFrame(id=frame_id, name=name, text=text)  # type: ignore[attr-defined]
    ).SerializeToString(),
    u64,
    names,
    st.text(max_size=40),
)
proto_transcription = st.builds(
    lambda frame_id, name, text, user, ts: frame_protos.Frame(  # type: ignore[attr-defined]
        transcription=frame_protos.TranscriptionFrame(  # type: ignore[attr-defined]
            id=frame_id, name=name, text=text, user_id=user, timestamp=ts
        )
    ).SerializeToString(),
    u64,
    names,
    st.text(max_size=40),
    names,
    names,
)
proto_message = st.builds(
    lambda data: frame_protos.Frame(  # type: ignore[attr-defined]
        message=frame_protos.MessageFrame(data=data)  # type: ignore[attr-defined]
    ).SerializeToString(),
    json_values.map(json.dumps) | st.text(max_size=40) | deep_json,
)
"""Transport messages: JSON (any value, not only objects), not JSON, too deep."""

proto_interruption = st.builds(
    lambda frame_id, name: frame_protos.Frame(  # type: ignore[attr-defined]
        interruption=frame_protos.InterruptionFrame(id=frame_id, name=name)  # type: ignore[attr-defined]
    ).SerializeToString(),
    u64,
    names,
)
proto_unknown = st.builds(
    lambda field, wire_type, rest: bytes([(field << 3) | wire_type]) + rest,
    st.integers(min_value=6, max_value=15),
    st.sampled_from([0, 2, 5]),
    st.binary(max_size=12),
)
"""A field the ``Frame`` message does not have (a newer sender), or an empty message."""

proto_valid = (
    proto_audio
    | proto_text
    | proto_transcription
    | proto_message
    | proto_interruption
    | st.just(b"")
)


def _flip(data: bytes, flips: list[tuple[float, int]]) -> bytes:
    out = bytearray(data)
    for where, bit in flips:
        if out:
            out[int(where * (len(out) - 1))] ^= 1 << bit
    return bytes(out)


proto_truncated = st.builds(
    lambda data, cut: data[: int(cut * len(data))], proto_valid, st.floats(0, 1)
)
proto_flipped = st.builds(
    _flip,
    proto_valid,
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=4),
)
proto_concatenated = st.lists(proto_valid | proto_unknown, min_size=2, max_size=3).map(b"".join)

protobuf_messages = (
    proto_valid
    | proto_truncated
    | proto_flipped
    | proto_concatenated
    | proto_unknown
    | st.binary(max_size=300)
    | st.text(max_size=40)
)
"""What a server speaking Pipecat's protobuf frames may send: valid frames with any
values, the same truncated, bit-flipped or concatenated (protobuf merges them),
unknown fields, random bytes, and text (which the format does not use)."""
