"""Asterisk chan_websocket, incoming mode: the serializer alone, and real pipelines
against the fake channel driver in ``support/fake_asterisk.py``."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)

from harness import RATE, RunningPipeline, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.protocols.asterisk import (
    MAX_COMMAND_BYTES,
    MAX_MESSAGE_BYTES,
    AsteriskSerializer,
    ControlMessage,
    asterisk_media_uri,
    asterisk_params,
    format_control,
    parse_control,
)
from support.fake_asterisk import FakeAsterisk, encode, tone

FORMATS = ["plain-text", "json"]

DOCS_PLAIN_MEDIA_START = (
    "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 "
    "channel:WebSocket/connectionid channel_id:pbx1-123456789.999 format:ulaw "
    "optimal_frame_size:160 ptime:20"
)
DOCS_JSON_MEDIA_START = """{
    "event": "MEDIA_START",
    "connection_id": "e226e283-c90a-4ea9-9e37-389000b9ef47",
    "channel": "WebSocket/connectionid",
    "channel_id": "pbx1-123456789.999",
    "format": "ulaw",
    "optimal_frame_size": 160,
    "ptime": 20,
    "channel_variables": {
        "SOME_CHANNEL_VARIABLE": "some value",
        "ANOTHER_CHANNEL_VARIABLE": "some other value"
    }
}"""


# -- control messages -------------------------------------------------------------


def test_parse_plain_text_media_start_from_the_docs():
    message = parse_control(DOCS_PLAIN_MEDIA_START)
    assert message == ControlMessage(
        "MEDIA_START",
        {
            "connection_id": "e226e283-c90a-4ea9-9e37-389000b9ef47",
            "channel": "WebSocket/connectionid",
            "channel_id": "pbx1-123456789.999",
            "format": "ulaw",
            "optimal_frame_size": 160,
            "ptime": 20,
        },
        "event",
        "plain-text",
    )


def test_parse_json_media_start_from_the_docs():
    message = parse_control(DOCS_JSON_MEDIA_START)
    assert (message.name, message.kind, message.format) == ("MEDIA_START", "event", "json")
    assert message.get("optimal_frame_size") == 160
    assert message.get("ptime") == 20
    assert message.get("channel_variables") == {
        "SOME_CHANNEL_VARIABLE": "some value",
        "ANOTHER_CHANNEL_VARIABLE": "some other value",
    }


@pytest.mark.parametrize(
    ("text", "name", "params"),
    [
        ("MEDIA_XOFF", "MEDIA_XOFF", {}),
        ('{"event":"MEDIA_XON","channel_id":"1.1"}', "MEDIA_XON", {"channel_id": "1.1"}),
        ("DTMF_END digit:5 channel_id:1.1", "DTMF_END", {"digit": "5", "channel_id": "1.1"}),
        ("DTMF_END digit:# channel_id:1.1", "DTMF_END", {"digit": "#", "channel_id": "1.1"}),
        (
            "STATUS queue_length:43 xon_level:800 xoff_level:900 queue_full:false "
            "bulk_media:true media_paused:false",
            "STATUS",
            {
                "queue_length": 43,
                "xon_level": 800,
                "xoff_level": 900,
                "queue_full": False,
                "bulk_media": True,
                "media_paused": False,
            },
        ),
        ("MEDIA_BUFFERING_COMPLETED", "MEDIA_BUFFERING_COMPLETED", {}),
        (
            "MEDIA_BUFFERING_COMPLETED 61ea9311-d501-46e5-8825-017b342b39f2",
            "MEDIA_BUFFERING_COMPLETED",
            {"correlation_id": "61ea9311-d501-46e5-8825-017b342b39f2"},
        ),
        (
            '{"event":"MEDIA_BUFFERING_COMPLETED","channel_id":"1.1","correlation_id":"x"}',
            "MEDIA_BUFFERING_COMPLETED",
            {"channel_id": "1.1", "correlation_id": "x"},
        ),
        (
            "ERROR channel_id:1.1 error_text:Unable to parse JSON command",
            "ERROR",
            {"channel_id": "1.1", "error_text": "Unable to parse JSON command"},
        ),
        ("QUEUE_DRAINED", "QUEUE_DRAINED", {}),
        ("  MEDIA_XON \n", "MEDIA_XON", {}),
    ],
)
def test_parse_events(text, name, params):
    message = parse_control(text)
    assert (message.name, message.params, message.kind) == (name, params, "event")


@pytest.mark.parametrize("text", ["", "   ", "{not json", '{"event": 5}', '{"channel_id": "1"}'])
def test_parse_rejects_malformed_messages(text):
    with pytest.raises(ValueError):
        parse_control(text)


@pytest.mark.parametrize(
    ("name", "params", "plain", "json_text"),
    [
        ("HANGUP", {}, "HANGUP", '{"command":"HANGUP"}'),
        ("FLUSH_MEDIA", None, "FLUSH_MEDIA", '{"command":"FLUSH_MEDIA"}'),
        (
            "STOP_MEDIA_BUFFERING",
            {"correlation_id": "61ea9311"},
            "STOP_MEDIA_BUFFERING 61ea9311",
            '{"command":"STOP_MEDIA_BUFFERING","correlation_id":"61ea9311"}',
        ),
        (
            "STOP_MEDIA_BUFFERING",
            {"correlation_id": None},
            "STOP_MEDIA_BUFFERING",
            '{"command":"STOP_MEDIA_BUFFERING"}',
        ),
        (
            "MARK_MEDIA",
            {"correlation_id": "m1"},
            "MARK_MEDIA m1",
            '{"command":"MARK_MEDIA","correlation_id":"m1"}',
        ),
    ],
)
def test_format_commands(name, params, plain, json_text):
    assert format_control(name, params, fmt="plain-text") == plain
    assert format_control(name, params, fmt="json") == json_text
    for text in (plain, json_text):
        parsed = parse_control(text)
        assert parsed.kind == "command"
        assert parsed.name == name
        assert parsed.params == {k: v for k, v in (params or {}).items() if v is not None}


def test_format_events_round_trip():
    params = {"queue_length": 5, "queue_full": True, "xon_level": 800}
    for fmt in FORMATS:
        text = format_control("STATUS", params, fmt=fmt, kind="event")  # type: ignore[arg-type]
        assert parse_control(text) == ControlMessage("STATUS", params, "event", fmt)  # type: ignore[arg-type]


def test_commands_longer_than_asterisk_reads_are_refused():
    serializer = AsteriskSerializer(control_format="json")
    with pytest.raises(ValueError, match="longer than"):
        serializer.format_command("MARK_MEDIA", correlation_id="x" * MAX_COMMAND_BYTES)
    with pytest.raises(ValueError, match="not a chan_websocket command"):
        serializer.format_command("hangup")


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("ws://pbx:8088", "ws://pbx:8088/media/abc-123"),
        ("ws://pbx:8088/", "ws://pbx:8088/media/abc-123"),
        ("wss://pbx.example.com:8089", "wss://pbx.example.com:8089/media/abc-123"),
        ("http://pbx:8088", "ws://pbx:8088/media/abc-123"),
        ("https://pbx", "wss://pbx/media/abc-123"),
        ("ws://pbx:8088/asterisk", "ws://pbx:8088/asterisk/media/abc-123"),
        ("ws://pbx:8088/media/", "ws://pbx:8088/media/abc-123"),
    ],
)
def test_media_uri(base, expected):
    assert asterisk_media_uri(base, "abc-123") == expected


@pytest.mark.parametrize(
    ("base", "connection_id"),
    [
        ("pbx:8088", "abc"),
        ("ftp://pbx", "abc"),
        ("ws://", "abc"),
        ("ws://pbx?x=1", "abc"),
        ("ws://pbx", ""),
        ("ws://pbx", "a/b"),
        ("ws://pbx", "a b"),
    ],
)
def test_media_uri_rejects(base, connection_id):
    with pytest.raises(ValueError):
        asterisk_media_uri(base, connection_id)


def test_params_recipe():
    serializer = AsteriskSerializer()
    params = asterisk_params(serializer, audio_out_send_lead_secs=2.0)
    assert params.serializer is serializer
    assert params.subprotocols == ["media"]
    assert params.reconnect is None
    assert params.add_wav_header is False
    assert params.audio_out_send_lead_secs == 2.0


# -- the serializer alone ----------------------------------------------------------


class FakeIO:
    """What the transport gives ``attach()``: records what is sent and delivered."""

    def __init__(self):
        self.sent: list[str | bytes] = []
        self.delivered: list = []
        self.tasks: list[asyncio.Task] = []

    async def send(self, message: str | bytes) -> bool:
        self.sent.append(message)
        return True

    async def deliver(self, frame) -> None:
        self.delivered.append(frame)

    def create_task(self, coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self.tasks.append(task)
        return task

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()

    def media(self) -> bytes:
        return b"".join(m for m in self.sent if isinstance(m, bytes))


def media_start(fmt: str = "slin16", control: str = "json", frame_size: int | None = None) -> str:
    fake = FakeAsterisk(format=fmt, control_format=control, optimal_frame_size=frame_size)
    return fake.format_event("MEDIA_START")


@contextlib.asynccontextmanager
async def started(
    fmt: str = "slin16", control: str = "json", **kwargs
) -> AsyncIterator[tuple[AsteriskSerializer, FakeIO]]:
    serializer = AsteriskSerializer(**kwargs)
    io = FakeIO()
    await serializer.attach(io)
    assert await serializer.deserialize(media_start(fmt, control)) is None
    try:
        yield serializer, io
    finally:
        io.close()


async def sent_payload(serializer: AsteriskSerializer, frame) -> list[str | bytes]:
    payload = await serializer.serialize(frame)
    if payload is None:
        return []
    return payload if isinstance(payload, list) else [payload]


@pytest.mark.parametrize(("fmt", "frame_size"), [("slin16", 640), ("ulaw", 160), ("alaw", 160)])
async def test_media_start_sets_codec_and_framing(fmt, frame_size):
    async with started(fmt) as (serializer, io):
        assert serializer.codec is not None and serializer.codec.name == fmt
        start = serializer.media_start
        assert start is not None
        assert (start.format, start.optimal_frame_size, start.ptime) == (fmt, frame_size, 20)
        assert start.channel_variables["MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"] == str(frame_size)
        audio = pcm(1.013)
        first = await sent_payload(serializer, OutputAudioRawFrame(audio, RATE, 1))
        assert len(first) == 1 and len(first[0]) % frame_size == 0
        # The partial frame goes out, padded with silence, once the bot is quiet.
        await wait_for(lambda: len(io.media()) + len(first[0]) >= frame_size * 50, 2)
        sizes = [len(first[0])] + [len(m) for m in io.sent if isinstance(m, bytes)]
        assert all(size % frame_size == 0 for size in sizes)
        total = sum(sizes) / frame_size
        assert 50 <= total <= 52  # 1.013 s of 20 ms frames, the last one padded


async def test_large_frames_are_split_into_whole_frames_within_the_limit():
    async with started("slin16", max_queued_frames=None) as (serializer, io):
        audio = pcm(5.0)  # 160,000 bytes
        first = await sent_payload(serializer, OutputAudioRawFrame(audio, RATE, 1))
        await wait_for(lambda: len(io.media()) + len(first[0]) == len(audio), 2)
        messages = [first[0], *(m for m in io.sent if isinstance(m, bytes))]
        assert [len(m) for m in messages] == [65280, 65280, 160000 - 2 * 65280]
        assert all(len(m) <= MAX_MESSAGE_BYTES and len(m) % 640 == 0 for m in messages)
        assert b"".join(messages) == audio


async def test_xoff_holds_audio_and_xon_releases_it_in_order():
    async with started("slin16", "plain-text") as (serializer, io):
        before = pcm(0.2, seed=1)
        assert await sent_payload(serializer, OutputAudioRawFrame(before, RATE, 1)) == [before]
        assert await serializer.deserialize("MEDIA_XOFF") is None
        assert serializer.paused
        held = [pcm(0.1, seed=s) for s in range(2, 7)]
        for chunk in held:
            assert await sent_payload(serializer, OutputAudioRawFrame(chunk, RATE, 1)) == []
        await asyncio.sleep(0.1)
        assert io.sent == []
        assert serializer.held_audio_secs == pytest.approx(0.5)
        await serializer.deserialize("MEDIA_XON")
        assert not serializer.paused
        assert io.media() == b"".join(held)
        # New audio after the release goes straight out again.
        after = pcm(0.1, seed=9)
        assert await sent_payload(serializer, OutputAudioRawFrame(after, RATE, 1)) == [after]
        assert serializer.stats.xoff == serializer.stats.xon == 1
        assert serializer.stats.paused_secs >= 0.1


async def test_queue_estimate_bounds_what_is_sent_without_xoff():
    async with started("slin16", max_queued_frames=100) as (serializer, _io):
        frame = pcm(0.02)
        began = time.monotonic()
        sent = [
            await sent_payload(serializer, OutputAudioRawFrame(frame, RATE, 1)) for _ in range(150)
        ]
        played = (time.monotonic() - began) / 0.02  # one frame plays per 20 ms meanwhile
        direct = sum(1 for payload in sent if payload)
        assert 100 <= direct <= 100 + played + 1
        assert serializer.queued_frames_estimate() <= 100
        assert serializer.held_audio_secs == pytest.approx(0.02 * (150 - direct))


async def test_interruption_flushes_and_drops_held_audio():
    async with started("ulaw", "plain-text") as (serializer, io):
        await serializer.deserialize("MEDIA_XOFF")
        await sent_payload(serializer, OutputAudioRawFrame(pcm(1.0), RATE, 1))
        assert serializer.held_audio_secs > 0.9
        assert await serializer.serialize(InterruptionFrame()) == "FLUSH_MEDIA"
        assert serializer.held_audio_secs == 0
        assert serializer.stats.flushes == 1
        assert serializer.stats.interrupted_audio_secs > 0.9
        await serializer.deserialize("MEDIA_XON")
        assert io.media() == b""


@pytest.mark.parametrize(
    ("control", "hangup"), [("plain-text", "HANGUP"), ("json", '{"command":"HANGUP"}')]
)
async def test_end_and_cancel_hang_up_once(control, hangup):
    async with started("slin16", control, end_timeout_secs=0) as (serializer, _io):
        assert await serializer.serialize(EndFrame()) == hangup
        assert await serializer.serialize(EndFrame()) is None
        assert await serializer.serialize(CancelFrame()) is None
    async with started("slin16", control) as (serializer, _io):
        assert await serializer.serialize(CancelFrame()) == hangup
        assert await serializer.serialize(EndFrame()) is None


async def test_end_sends_held_audio_before_hanging_up():
    async with started("slin16", "json", end_timeout_secs=3) as (serializer, io):
        await serializer.deserialize('{"event":"MEDIA_XOFF"}')
        audio = pcm(0.5)
        await sent_payload(serializer, OutputAudioRawFrame(audio, RATE, 1))
        assert io.sent == []
        hangup = await serializer.serialize(EndFrame())
        assert hangup == '{"command":"HANGUP"}'
        assert io.media() == audio


async def test_control_format_follows_media_start_unless_configured():
    async with started("slin16", "json") as (serializer, _io):
        assert serializer.control_format == "json"
    async with started("slin16", "plain-text") as (serializer, _io):
        assert serializer.control_format == "plain-text"
    async with started("slin16", "plain-text", control_format="json") as (serializer, _io):
        assert serializer.control_format == "json"
        assert await serializer.serialize(InterruptionFrame()) == '{"command":"FLUSH_MEDIA"}'


async def test_events_dtmf_status_and_errors():
    seen: list[str] = []
    async with started("ulaw", "plain-text", on_event=lambda m: seen.append(m.name)) as (s, _io):
        frame = await s.deserialize("DTMF_END digit:7 channel_id:1.1")
        assert isinstance(frame, InputDTMFFrame) and frame.button == KeypadEntry.SEVEN
        star = await s.deserialize('{"event":"DTMF_END","channel_id":"1.1","digit":"*"}')
        assert isinstance(star, InputDTMFFrame) and star.button == KeypadEntry.STAR
        assert await s.deserialize("DTMF_END digit:A channel_id:1.1") is None
        assert (s.stats.dtmf, s.stats.dtmf_ignored) == (2, 1)
        await s.deserialize(
            "STATUS channel_id:1.1 queue_length:3 xon_level:700 xoff_level:750 "
            "queue_full:false bulk_media:false media_paused:false"
        )
        assert s.stats.last_status is not None and s.stats.last_status["queue_length"] == 3
        await s.deserialize("ERROR channel_id:1.1 error_text:Unable to parse JSON command")
        assert s.stats.errors == ["Unable to parse JSON command"]
        await s.deserialize("MEDIA_BUFFERING_COMPLETED pipecat-1")
        await s.deserialize("SOMETHING_NEW foo:bar")
        assert s.stats.events["MEDIA_BUFFERING_COMPLETED"] == 1
        assert seen == [
            "MEDIA_START",
            *["DTMF_END"] * 3,
            "STATUS",
            "ERROR",
            "MEDIA_BUFFERING_COMPLETED",
            "SOMETHING_NEW",
        ]


async def test_caller_audio_is_decoded_and_resampled():
    async with started("ulaw") as (serializer, _io):
        caller = encode(tone(1.0, 8000), "ulaw")
        frames = [await serializer.deserialize(caller[i : i + 160]) for i in range(0, 8000, 160)]
        audio = b"".join(f.audio for f in frames if isinstance(f, InputAudioRawFrame))
        assert all(f.sample_rate == RATE for f in frames if isinstance(f, InputAudioRawFrame))
        # The stream resampler keeps a few ms of history back.
        assert 0.9 * 2 * RATE < len(audio) <= 2 * RATE


async def test_media_before_media_start_and_unsupported_formats_are_errors():
    serializer = AsteriskSerializer()
    with pytest.raises(ValueError, match="before MEDIA_START"):
        await serializer.deserialize(b"\xff" * 160)
    await serializer.deserialize(
        "MEDIA_START connection_id:x channel:WebSocket/INCOMING/0x1 channel_id:1.1 "
        "format:opus optimal_frame_size:0 ptime:20"
    )
    assert serializer.codec is None
    with pytest.raises(ValueError, match="unsupported"):
        await serializer.deserialize(b"\x00" * 40)
    assert await serializer.serialize(OutputAudioRawFrame(pcm(0.1), RATE, 1)) is None


async def test_audio_before_media_start_is_sent_after_it_in_order():
    serializer = AsteriskSerializer()
    io = FakeIO()
    await serializer.attach(io)
    try:
        early = pcm(0.1, seed=3)
        assert await serializer.serialize(OutputAudioRawFrame(early, RATE, 1)) == []
        await serializer.deserialize(media_start("slin16", "plain-text"))
        await wait_for(lambda: len(io.media()) == len(early), 2)
        assert io.media() == early
        later = pcm(0.1, seed=4)
        assert await sent_payload(serializer, OutputAudioRawFrame(later, RATE, 1)) == [later]
    finally:
        io.close()


async def test_commands_as_transport_messages_keep_their_place():
    async with started("slin16", "json") as (serializer, io):
        await serializer.deserialize('{"event":"MEDIA_XOFF"}')
        await sent_payload(serializer, OutputAudioRawFrame(pcm(0.1), RATE, 1))
        mark = OutputTransportMessageFrame(
            message={"command": "MARK_MEDIA", "correlation_id": "m1"}
        )
        assert await serializer.serialize(mark) == []
        await serializer.deserialize('{"event":"MEDIA_XON"}')
        assert isinstance(io.sent[0], bytes)
        assert io.sent[-1] == '{"command":"MARK_MEDIA","correlation_id":"m1"}'


# -- real pipelines against the fake ------------------------------------------------


def transport_for(fake: FakeAsterisk, serializer: AsteriskSerializer, **overrides):
    params = asterisk_params(serializer, audio_out_end_silence_secs=0, **overrides)
    return WebsocketClientTransport(fake.uri, params)


async def started_call(p: RunningPipeline, serializer: AsteriskSerializer) -> None:
    await wait_for(lambda: serializer.codec is not None, 10)


def bytes_between(fake: FakeAsterisk, start: float, end: float) -> int:
    return sum(b.accepted for b in fake.binary_in if start < b.t < end)


@pytest.mark.parametrize("control", FORMATS)
@pytest.mark.parametrize("fmt", ["ulaw", "slin16"])
async def test_call_media_start_framing_and_caller_audio(control, fmt):
    rate = 8000 if fmt == "ulaw" else 16000
    caller = encode(tone(0.6, rate), fmt)
    async with FakeAsterisk(format=fmt, control_format=control, caller_audio=caller) as fake:
        serializer = AsteriskSerializer()
        # 10 ms chunks: Pipecat keeps a partial chunk back, and we want the
        # serializer to see the partial last frame.
        transport = transport_for(fake, serializer, audio_out_10ms_chunks=1)
        async with run_pipeline(transport) as p:
            await started_call(p, serializer)
            start = serializer.media_start
            assert start is not None
            assert (start.connection_id, start.channel, start.format) == (
                fake.connection_id,
                fake.channel,
                fmt,
            )
            assert start.optimal_frame_size == fake.optimal_frame_size
            assert serializer.control_format == control
            audio = pcm(1.01)  # not a whole number of 20 ms frames
            await p.send(OutputAudioRawFrame(audio, RATE, 1))
            frame = fake.optimal_frame_size
            expected = math.ceil(1.01 * 50) * frame  # the tail is padded to a frame
            await wait_for(lambda: len(fake.media_in) >= expected, 10)
            await wait_for(lambda: len(p.collector.audio()) >= 2 * RATE * 0.5, 10)
            await asyncio.sleep(0.3)
        assert fake.subprotocols == ["media"]
        assert fake.violations == []
        assert fake.dropped_bytes == 0
        assert all(b.size % frame == 0 and b.size <= MAX_MESSAGE_BYTES for b in fake.binary_in)
        assert len(fake.media_in) == expected
        if fmt == "slin16":
            assert bytes(fake.media_in[: len(audio)]) == audio
        heard = p.collector.of(InputAudioRawFrame)
        assert heard and all(f.sample_rate == RATE for f in heard)  # type: ignore[attr-defined]


@pytest.mark.parametrize("control", FORMATS)
async def test_call_large_frames_are_split(control):
    async with FakeAsterisk(format="slin16", control_format=control) as fake:
        serializer = AsteriskSerializer()
        transport = transport_for(
            fake, serializer, audio_out_10ms_chunks=300, audio_out_send_lead_secs=30
        )
        async with run_pipeline(transport) as p:
            await started_call(p, serializer)
            audio = pcm(6.0)  # chunks of 3 s = 96,000 bytes each
            await p.send(OutputAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: len(fake.media_in) >= len(audio), 10)
        sizes = [b.size for b in fake.binary_in]
        assert max(sizes) == 65280 and all(s <= MAX_MESSAGE_BYTES and s % 640 == 0 for s in sizes)
        assert fake.violations == []
        assert bytes(fake.media_in) == audio


@pytest.mark.slow
@pytest.mark.parametrize("control", FORMATS)
async def test_call_xoff_pauses_and_xon_resumes_without_losing_audio(control):
    async with FakeAsterisk(format="slin16", control_format=control) as fake:
        serializer = AsteriskSerializer()
        # A large lead, so that our pacing does not hold the audio back, and
        # 100 ms chunks (5 frames a message) to push it fast.
        transport = transport_for(
            fake, serializer, audio_out_send_lead_secs=60, audio_out_10ms_chunks=10
        )
        async with run_pipeline(transport) as p:
            await started_call(p, serializer)
            audio = pcm(20.0, seed=7)  # 1000 frames: more than the XOFF level of 900
            await p.send(OutputAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: fake.event_times("MEDIA_XOFF"), 10)
            # Paused, audio piles up on our side instead of being sent (the
            # next chunk may not have been written yet at the moment of XOFF).
            await wait_for(lambda: serializer.paused and serializer.held_audio_secs > 0, 10)
            await wait_for(lambda: fake.event_times("MEDIA_XON"), 10)
            await wait_for(lambda: len(fake.media_in) >= len(audio), 10)
        xoff, xon = fake.event_times("MEDIA_XOFF")[0], fake.event_times("MEDIA_XON")[0]
        # Between XOFF and XON only what was already in flight arrived: our own
        # bound (950 frames) is 50 frames above the XOFF level, plus a message.
        assert bytes_between(fake, xoff, xon) <= (50 + 5) * 640
        assert bytes_between(fake, xon, xon + 10) > 0
        assert serializer.stats.xoff == 1 and serializer.stats.xon >= 1
        assert serializer.stats.paused_secs > 1.0
        assert fake.max_queue_length < 1000
        assert fake.violations == [] and fake.dropped_bytes == 0
        assert bytes(fake.media_in) == audio  # every byte, in order


@pytest.mark.parametrize("control", FORMATS)
async def test_call_interruption_sends_flush_media(control):
    async with FakeAsterisk(format="ulaw", control_format=control) as fake:
        serializer = AsteriskSerializer()
        transport = transport_for(
            fake, serializer, audio_out_send_lead_secs=30, audio_out_10ms_chunks=10
        )
        async with run_pipeline(transport) as p:
            await started_call(p, serializer)
            await p.send(OutputAudioRawFrame(pcm(8.0), RATE, 1))
            await wait_for(lambda: fake.queue_length > 300, 10)
            await p.send(InterruptionFrame())
            await wait_for(lambda: fake.commands_named("FLUSH_MEDIA"), 10)
            flushed_at = fake.commands_named("FLUSH_MEDIA")[0].t
            await asyncio.sleep(0.3)
            assert fake.queue_length <= 1
        assert fake.flushed_frames > 300
        assert serializer.stats.flushes == 1
        assert bytes_between(fake, flushed_at, flushed_at + 10) == 0
        assert fake.violations == []


@pytest.mark.parametrize("control", FORMATS)
async def test_call_end_frame_hangs_up(control):
    async with FakeAsterisk(format="slin16", control_format=control) as fake:
        serializer = AsteriskSerializer()
        async with run_pipeline(transport_for(fake, serializer)) as p:
            await started_call(p, serializer)
            await p.send(OutputAudioRawFrame(pcm(0.4), RATE, 1))
            await wait_for(lambda: len(fake.media_in) >= 0.4 * 32000, 10)
            took = await p.end()
            await asyncio.wait_for(fake.closed.wait(), 10)
        assert took < 3
        assert fake.hung_up
        assert fake.command_names()[-1] == "HANGUP"
        assert fake.close_codes == [1000]
        assert fake.violations == []
        assert p.errors == []


@pytest.mark.parametrize("control", FORMATS)
async def test_call_dtmf_end_becomes_input_dtmf_frame(control):
    async with FakeAsterisk(format="ulaw", control_format=control) as fake:
        serializer = AsteriskSerializer()
        async with run_pipeline(transport_for(fake, serializer)) as p:
            await started_call(p, serializer)
            for digit in "7#":
                await fake.send_dtmf(digit)
            await wait_for(lambda: len(p.collector.of(InputDTMFFrame)) == 2, 10)
        buttons = [f.button for f in p.collector.of(InputDTMFFrame)]  # type: ignore[attr-defined]
        assert buttons == [KeypadEntry.SEVEN, KeypadEntry.POUND]


@pytest.mark.parametrize("control", FORMATS)
async def test_call_media_buffering_and_status(control):
    async with FakeAsterisk(format="ulaw", control_format=control) as fake:
        serializer = AsteriskSerializer(media_buffering=True)
        async with run_pipeline(transport_for(fake, serializer)) as p:
            await started_call(p, serializer)
            await p.send(OutputAudioRawFrame(pcm(0.51), RATE, 1))
            await wait_for(lambda: serializer.stats.events["MEDIA_BUFFERING_COMPLETED"] == 1, 10)
            assert await serializer.request_status()
            await wait_for(lambda: serializer.stats.last_status is not None, 10)
        names = fake.command_names()
        assert names[0] == "START_MEDIA_BUFFERING"
        assert names[1] == "STOP_MEDIA_BUFFERING" and fake.commands[1].arg == "pipecat-1"
        first_media = fake.binary_in[0].t
        assert fake.commands[0].t <= first_media <= fake.commands[1].t
        completed = [m for m in serializer.events if m.name == "MEDIA_BUFFERING_COMPLETED"]
        assert completed[0].get("correlation_id") == "pipecat-1"
        status = serializer.stats.last_status
        assert status is not None
        assert (status["xon_level"], status["xoff_level"]) == (800, 900)
        assert isinstance(status["queue_length"], int) and isinstance(status["queue_full"], bool)
        assert fake.violations == []


async def test_call_answer_when_the_channel_does_not_auto_answer():
    caller = encode(tone(0.5, 8000), "ulaw")
    async with FakeAsterisk(format="ulaw", auto_answer=False, caller_audio=caller) as fake:
        serializer = AsteriskSerializer(answer=True)
        async with run_pipeline(transport_for(fake, serializer)) as p:
            await started_call(p, serializer)
            await wait_for(lambda: fake.answered, 10)
            await wait_for(lambda: len(p.collector.audio()) > 0, 10)
        assert fake.command_names()[0] == "ANSWER"


async def test_call_to_an_unknown_connection_id_fails():
    async with FakeAsterisk() as fake:
        serializer = AsteriskSerializer()
        uri = asterisk_media_uri(f"ws://127.0.0.1:{fake.port}", "not-the-channel")
        transport = WebsocketClientTransport(uri, asterisk_params(serializer))
        async with run_pipeline(transport) as p:
            await wait_for(lambda: p.errors, 10)
        assert fake.rejected == [404]
        assert fake.connections == 0
