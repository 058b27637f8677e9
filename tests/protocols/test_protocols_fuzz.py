"""Generated inputs for every protocol's ``deserialize`` (issues 12 and 13).

Ours (raw PCM, the carriers, Asterisk): a malformed message must either be
ignored (None) or raise ``ValueError`` with a message (the input counts it as
a decode error); no ``KeyError``, ``TypeError``, ``AttributeError``,
``RecursionError``... with a bare traceback. Valid media must become audio
with a sample rate and whole 16-bit samples. Pipecat's
``ProtobufFrameSerializer`` (the default) is not ours: these document what
its ``deserialize`` raises and check that the input's fast path for it
decodes the same frames, without its ERROR line per bad message. That the
transport counts every outcome is ``tests/core/test_inbound_fuzz.py``. Each
defect these found is also kept as a plain regression test at the end of
the file. Strategies: ``tests/support/inbound_messages.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pipecat.frames.protobufs.frames_pb2 as frame_protos
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    TextFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from budget import budget
from pipecat_wsclient import peer_json
from pipecat_wsclient.peer_json import MAX_DEPTH
from pipecat_wsclient.protobuf_audio import decode_audio
from pipecat_wsclient.protocols import (
    AsteriskSerializer,
    ExotelCarrierSerializer,
    PlivoCarrierSerializer,
    RawPCMSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
    VonageCarrierSerializer,
)
from pipecat_wsclient.protocols.carrier import CarrierSerializer
from support.fake_asterisk import FakeAsterisk
from support.inbound_messages import (
    asterisk_messages,
    deep_messages,
    messages_any,
    protobuf_messages,
    raw_messages,
)

RATE = 16000
FUZZ = budget(ci=200, long=20_000)
RAW_FUZZ = budget(ci=200, long=10_000)

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
@given(messages=st.lists(messages_any | deep_messages, min_size=1, max_size=5))
def test_carrier_deserialize_raises_only_value_error(name, messages):
    async def body():
        await feed(await started_carrier(name), messages)

    run(body())


@pytest.mark.generated
@pytest.mark.parametrize("control", ["plain-text", "json"])
@pytest.mark.parametrize("start", [False, True], ids=["before MEDIA_START", "after MEDIA_START"])
@FUZZ
@given(messages=st.lists(asterisk_messages, min_size=1, max_size=5))
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


PIPECAT_PROTOBUF_RAISES = (DecodeError, TypeError, ZeroDivisionError)
"""What Pipecat's ``ProtobufFrameSerializer.deserialize`` raises (pipecat-ai 1.14):
``DecodeError`` for bytes that are not a ``Frame`` message, ``TypeError`` for a
text message (it takes bytes only), ``ZeroDivisionError`` for audio with
``num_channels=0`` (``AudioRawFrame.__post_init__`` divides by it). It returns
None, after an ERROR log line, for a message with no frame in it (an empty
message, unknown fields only) and for a transport message whose data is not
JSON. Not ours to change: the transport counts each of these as a decode error
and logs at a limited rate (``tests/core/test_inbound_fuzz.py``)."""

PIPECAT_FRAMES = (InputAudioRawFrame, TextFrame, InputTransportMessageFrame, InterruptionFrame)


def pipecat_deserialize(message: str | bytes) -> tuple[Frame | None, list[str]]:
    """Pipecat's protobuf ``deserialize`` and the ERROR lines it logged."""
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    try:
        return asyncio.run(ProtobufFrameSerializer().deserialize(message)), errors
    finally:
        logger.remove(sink)


@pytest.mark.generated
@given(message=protobuf_messages)
@budget(ci=400, long=10_000)
def test_pipecat_protobuf_deserialize_raises_only_what_is_documented(message):
    try:
        frame, errors = pipecat_deserialize(message)
    except PIPECAT_PROTOBUF_RAISES:
        return
    assert frame is None or isinstance(frame, PIPECAT_FRAMES), frame
    if frame is None:
        assert errors  # It says why, in an ERROR line per message.


@pytest.mark.generated
@given(message=protobuf_messages)
@budget(ci=400, long=10_000)
def test_protobuf_fast_path_decodes_as_pipecat_without_its_error_lines(message):
    """``decode_audio`` (the input's path for the stock serializer) agrees with Pipecat.

    Audio: the same frame. What Pipecat cannot decode: the same exception.
    What Pipecat drops with an ERROR line, and transport messages nested deeper
    than ``peer_json.MAX_DEPTH``: a ``ValueError`` (a counted decode error).
    Everything else is left to Pipecat, which decodes it without an ERROR line
    (or raises ``TypeError`` for text).
    """
    try:
        ours = decode_audio(message)
    except ValueError as e:
        theirs, errors = pipecat_deserialize(message)
        if "nested deeper" in str(e) and theirs is not None:
            assert isinstance(theirs, InputTransportMessageFrame)  # printing it may fail
        else:
            assert theirs is None and errors
        return
    except (DecodeError, ZeroDivisionError) as e:
        with pytest.raises(type(e)):
            pipecat_deserialize(message)
        return
    if isinstance(message, str):
        assert ours is None
        with pytest.raises(TypeError):
            pipecat_deserialize(message)
        return
    theirs, errors = pipecat_deserialize(message)
    assert not errors
    assert isinstance(theirs, PIPECAT_FRAMES)
    if ours is None:
        assert not isinstance(theirs, InputAudioRawFrame)
        return
    assert isinstance(theirs, InputAudioRawFrame)
    for field in ("audio", "sample_rate", "num_channels", "num_frames", "pts"):
        assert getattr(ours, field) == getattr(theirs, field), field
    sent = frame_protos.Frame.FromString(message).audio  # type: ignore[attr-defined]
    if sent.id:  # else each frame has a fresh one
        assert ours.id == theirs.id == sent.id
    if sent.name:
        assert ours.name == theirs.name == sent.name


@pytest.mark.generated
@pytest.mark.parametrize("channels", [1, 2])
@given(messages=st.lists(raw_messages, min_size=1, max_size=5))
@RAW_FUZZ
def test_raw_deserialize_raises_only_value_error(channels, messages):
    serializer = RawPCMSerializer(sample_rate=RATE, num_channels=channels)
    for message in messages:
        try:
            frame = asyncio.run(serializer.deserialize(message))
        except ValueError as e:
            assert str(e), f"ValueError without a message for {message!r}"
            continue
        if isinstance(message, bytes):
            assert isinstance(frame, InputAudioRawFrame)
            assert frame.sample_rate == RATE and frame.num_channels == channels
            assert len(frame.audio) % (2 * channels) == 0
        else:
            assert isinstance(frame, InputTransportMessageFrame)


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


@pytest.mark.parametrize("depth", [65, 500, 5000])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("raw", "{deep}"),
        *((name, "{deep}") for name in CARRIERS),
        *((name, '{{"event":"media","media":{deep}}}') for name in JSON_CARRIERS),
        ("vonage", '{{"action":"notify","payload":{deep}}}'),
        ("asterisk", '{{"event":"STATUS","queue_length":{deep}}}'),
    ],
)
async def test_json_nested_too_deeply_is_a_value_error(name, text, depth):
    """Found by the fuzzing: JSON deeper than Python's parser recurses (5000) raised
    ``RecursionError`` from every JSON protocol's ``deserialize``; less deep, it parsed,
    and a transport message nested about 980 deep could not be printed further down
    the pipeline (``test_inbound_fuzz``). Now deeper than ``peer_json.MAX_DEPTH`` is
    refused."""
    text = text.format(deep="[" * depth + "]" * depth)
    if name == "raw":
        serializer: Any = RawPCMSerializer(sample_rate=RATE)
    elif name == "asterisk":
        serializer = await started_asterisk("json", True)
    else:
        serializer = await started_carrier(name)
    with pytest.raises(ValueError, match="nested deeper than 64"):
        await serializer.deserialize(text)


def test_peer_json_accepts_nesting_up_to_its_bound():
    def objects(depth: int) -> str:
        return '{"a":' * depth + "1" + "}" * depth

    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert peer_json.loads(deepest)
    assert peer_json.loads(objects(MAX_DEPTH))
    with pytest.raises(ValueError, match="nested deeper"):
        peer_json.loads("[" + deepest + "]")
    with pytest.raises(ValueError, match="nested deeper"):
        peer_json.loads(objects(MAX_DEPTH + 1))


async def test_asterisk_events_about_bad_input_are_logged_at_a_limited_rate():
    """Found by the fuzzing: each unsupported ``MEDIA_START`` logged an ERROR line, each
    ``ERROR`` event and each DTMF digit Pipecat has no key for a WARNING line: a peer
    sending many flooded the log. Now one line per kind per 5 s; all are counted."""
    serializer = await started_asterisk("plain-text", True)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        for _ in range(20):
            await serializer.deserialize("MEDIA_START format:opus optimal_frame_size:160")
            await serializer.deserialize("MEDIA_START format:slin16 optimal_frame_size:3")
            await serializer.deserialize("ERROR channel_id:1 error_text:oops")
            await serializer.deserialize("DTMF_END digit:X")
    finally:
        logger.remove(sink)
    assert len([line for line in lines if "unsupported" in line or "not whole" in line]) == 1
    assert len([line for line in lines if "reported an error" in line]) == 1
    assert len([line for line in lines if "DTMF" in line]) == 1
    assert len(lines) == 3
    assert serializer.stats.dtmf_ignored == 20
    assert serializer.stats.media_starts == 1 + 40
    assert len(serializer.stats.errors) == 20
