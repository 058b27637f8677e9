"""Generated inputs for every protocol's ``deserialize`` (issue 12, fuzz-proofing groundwork).

A malformed message must either be ignored (None) or raise ``ValueError``
with a message (the input counts it as a decode error); no ``KeyError``,
``TypeError``, ``AttributeError``... with a bare traceback. Valid media must
become audio with a sample rate and whole 16-bit samples. Each defect these
found is also kept as a plain regression test at the end of the file.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipecat.frames.frames import Frame, InputAudioRawFrame

from budget import budget
from pipecat_wsclient.protocols import (
    AsteriskSerializer,
    ExotelCarrierSerializer,
    PlivoCarrierSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
    VonageCarrierSerializer,
)
from pipecat_wsclient.protocols.asterisk import EVENTS
from pipecat_wsclient.protocols.carrier import CarrierSerializer
from support.fake_asterisk import FakeAsterisk

RATE = 16000
FUZZ = budget(ci=200, long=20_000)

CARRIERS: dict[str, Callable[[], CarrierSerializer]] = {
    "twilio": TwilioCarrierSerializer,
    "telnyx": TelnyxCarrierSerializer,
    "plivo": PlivoCarrierSerializer,
    "exotel": ExotelCarrierSerializer,
    "vonage": VonageCarrierSerializer,
    "vonage-8k": lambda: VonageCarrierSerializer(sample_rate=8000),
}


class FakeIO:
    def __init__(self):
        self.sent: list[str | bytes] = []
        self.delivered: list[Frame] = []

    async def send(self, message: str | bytes) -> bool:
        self.sent.append(message)
        return True

    async def deliver(self, frame: Frame) -> None:
        self.delivered.append(frame)

    async def end_call(self, reason: str) -> None:
        pass

    def create_task(self, coroutine, name: str):
        coroutine.close()  # no background task: the tests look at the state directly


# -- strategies ---------------------------------------------------------------------

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
asterisk_plain = st.builds(
    lambda name, pairs: " ".join([name, *(f"{k}:{v}" for k, v in pairs)]),
    st.sampled_from(sorted(EVENTS)) | st.text(max_size=12),
    st.lists(st.tuples(st.sampled_from(ASTERISK_KEYS), asterisk_values), max_size=6),
)
asterisk_json = st.builds(
    lambda name, fields: json.dumps({"event": name, **fields}),
    st.sampled_from(sorted(EVENTS)) | json_values,
    st.dictionaries(st.sampled_from(ASTERISK_KEYS), json_values | asterisk_values, max_size=6),
)

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

messages_any = (
    st.text(max_size=60)
    | st.binary(max_size=700)
    | json_values.map(json.dumps)
    | carrier_json.map(json.dumps)
    | vonage_json.map(json.dumps)
)


# -- running ------------------------------------------------------------------------


async def started_carrier(name: str) -> CarrierSerializer:
    serializer = CARRIERS[name]()
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE))
    await serializer.session_start_messages()
    await serializer.attach(FakeIO())
    return serializer


async def started_asterisk(control: str, start: bool, fmt: str = "ulaw") -> AsteriskSerializer:
    serializer = AsteriskSerializer()
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE))
    await serializer.attach(FakeIO())  # type: ignore[arg-type]
    if start:
        fake = FakeAsterisk(format=fmt, control_format=control)
        await serializer.deserialize(fake.format_event("MEDIA_START"))
    return serializer


def check_frame(frame: Frame | None) -> None:
    if isinstance(frame, InputAudioRawFrame):
        assert frame.sample_rate > 0
        assert len(frame.audio) % 2 == 0


async def feed(serializer: Any, messages: list[str | bytes]) -> None:
    """Deserialize each message: a frame, None, or ValueError; anything else fails."""
    for message in messages:
        try:
            frame = await serializer.deserialize(message)
        except ValueError as e:
            assert str(e), f"ValueError without a message for {message!r}"
            continue
        check_frame(frame)
    if isinstance(serializer, CarrierSerializer):
        for kind, item in serializer.playback._queue:
            if kind == "audio":
                assert isinstance(item, bytes) and len(item) % 2 == 0


def run(coroutine) -> None:
    asyncio.run(coroutine)


# -- generated tests ----------------------------------------------------------------


@pytest.mark.generated
@pytest.mark.parametrize("name", list(CARRIERS))
@FUZZ
@given(messages=st.lists(messages_any, min_size=1, max_size=5))
def test_carrier_deserialize_raises_only_value_error(name, messages):
    async def body():
        await feed(await started_carrier(name), messages)

    run(body())


@pytest.mark.generated
@pytest.mark.parametrize("control", ["plain-text", "json"])
@pytest.mark.parametrize("start", [False, True], ids=["before MEDIA_START", "after MEDIA_START"])
@FUZZ
@given(
    messages=st.lists(
        asterisk_media_start
        | asterisk_plain
        | asterisk_json
        | st.binary(max_size=700)
        | messages_any,
        min_size=1,
        max_size=5,
    )
)
def test_asterisk_deserialize_raises_only_value_error(control, start, messages):
    async def body():
        await feed(await started_asterisk(control, start), messages)

    run(body())


@pytest.mark.generated
@pytest.mark.parametrize("name", list(CARRIERS))
@FUZZ
@given(audio=st.binary(min_size=1, max_size=1200))
def test_carrier_valid_media_becomes_whole_samples(name, audio):
    async def body():
        serializer = await started_carrier(name)
        if name.startswith("vonage"):
            message: str | bytes = audio[: len(audio) // 2 * 2] or b"\x00\x00"
        else:
            data = audio[: len(audio) // 2 * 2] or b"\x00\x00" if name == "exotel" else audio
            payload = base64.b64encode(data).decode()
            media: dict[str, Any] = {"payload": payload}
            if name == "plivo":
                media.update(contentType="audio/x-mulaw", sampleRate=8000)
            event = "playAudio" if name == "plivo" else "media"
            message = json.dumps({"event": event, "media": media})
        assert await serializer.deserialize(message) is None
        tail = await serializer.flush_input()
        queued = [item for kind, item in serializer.playback._queue if kind == "audio"]
        assert all(isinstance(a, bytes) and len(a) % 2 == 0 for a in queued)
        assert len(tail) % 2 == 0
        assert sum(len(a) for a in queued) + len(tail) > 0

    run(body())


@pytest.mark.generated
@pytest.mark.parametrize("fmt", ["ulaw", "alaw", "slin", "slin16", "slin48"])
@FUZZ
@given(audio=st.binary(min_size=1, max_size=1500))
def test_asterisk_valid_media_becomes_whole_samples(fmt, audio):
    async def body():
        serializer = await started_asterisk("json", True, fmt)
        frame = await serializer.deserialize(audio)
        check_frame(frame)
        if frame is not None:
            assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == RATE

    run(body())


# -- the defects found, as plain regression tests -------------------------------------

JSON_CARRIERS = ["twilio", "telnyx", "plivo", "exotel"]


@pytest.mark.parametrize("name", JSON_CARRIERS)
@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"event": "MEDIA"}, "without a 'media' object"),  # was KeyError
        (None, "not a JSON object"),  # was AttributeError
        ([1, 2], "not a JSON object"),
        ("media", "not a JSON object"),
        ({"event": "MEDIA", "media": "x"}, "without a 'media' object"),  # was TypeError
        ({"event": "MEDIA", "media": {"payload": 5}}, "not base64 text"),  # was TypeError
        ({"event": "MEDIA", "media": {}}, "not base64 text"),  # was KeyError
        ({"event": "MEDIA", "media": {"payload": "!!!"}}, "not valid base64"),  # binascii
    ],
)
async def test_json_carrier_malformed_messages_are_value_errors(name, message, error):
    serializer = await started_carrier(name)
    if isinstance(message, dict) and message.get("event") == "MEDIA":
        message = {**message, "event": "playAudio" if name == "plivo" else "media"}
        media = message.get("media")
        if name == "plivo" and isinstance(media, dict):
            message["media"] = {"contentType": "audio/x-mulaw", "sampleRate": 8000, **media}
    with pytest.raises(ValueError, match=error):
        await serializer.deserialize(json.dumps(message))


@pytest.mark.parametrize("name", JSON_CARRIERS)
async def test_json_carrier_mark_that_is_not_an_object_is_a_mark_without_a_name(name):
    serializer = await started_carrier(name)
    event = {"plivo": "checkpoint"}.get(name, "mark")
    assert await serializer.deserialize(json.dumps({"event": event, "mark": "m"})) is None


@pytest.mark.parametrize("rate", [[8000], None, "x", 1e400])
async def test_plivo_sample_rate_that_is_not_a_number_is_a_value_error(rate):
    serializer = await started_carrier("plivo")
    media = {"contentType": "audio/x-mulaw", "sampleRate": rate, "payload": "AAA="}
    text = json.dumps({"event": "playAudio", "media": media}).replace("Infinity", "1e400")
    with pytest.raises(ValueError, match="playAudio sampleRate"):
        await serializer.deserialize(text)


@pytest.mark.parametrize("name", ["exotel", "vonage", "vonage-8k"])
async def test_pcm_carriers_reject_odd_bytes_instead_of_queueing_half_samples(name):
    serializer = await started_carrier(name)
    odd = b"\x01\x02\x03"
    message: str | bytes = odd
    if name == "exotel":
        payload = base64.b64encode(odd).decode()
        message = json.dumps({"event": "media", "media": {"payload": payload}})
    with pytest.raises(ValueError, match="not whole 16-bit samples"):
        await serializer.deserialize(message)
    assert serializer.playback.queued_secs == 0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"event":"MEDIA_START","format":"ulaw","optimal_frame_size":[160]}', "non-negative"),
        ('{"event":"MEDIA_START","format":"ulaw","ptime":1e400}', "non-negative"),  # Overflow
        ('{"event":"MEDIA_START","format":"ulaw","ptime":20.5}', "non-negative"),
        ("MEDIA_START format:ulaw optimal_frame_size:-160 ptime:20", "non-negative"),
        ('{"event":"MEDIA_START","format":"ulaw","optimal_frame_size":true}', "non-negative"),
    ],
)
async def test_asterisk_media_start_with_bad_numbers_is_a_value_error(text, error):
    serializer = await started_asterisk("json", False)
    with pytest.raises(ValueError, match=error):
        await serializer.deserialize(text)
    assert serializer.codec is None


@pytest.mark.parametrize(
    "text",
    [
        "MEDIA_START format:slin16 optimal_frame_size:99999998 ptime:20",
        "MEDIA_START format:ulaw optimal_frame_size:160 ptime:100000",
    ],
)
async def test_asterisk_media_start_with_framing_we_cannot_send_is_unsupported(text):
    serializer = await started_asterisk("plain-text", False)
    assert await serializer.deserialize(text) is None
    assert serializer.codec is None
    with pytest.raises(ValueError, match=r"optimal_frame_size|ptime"):
        await serializer.deserialize(b"\x00" * 160)
