"""Exotel's and Vonage's side of a phone bot's media stream.

Unit tests check every message shape against the providers' documented
protocols and against what Pipecat's own ``ExotelFrameSerializer``,
``VonageFrameSerializer`` and ``parse_telephony_websocket`` (the bot side)
make of them, with no sockets. End-to-end tests call a real Pipecat phone
bot (``support/phone_bot.py``: ``parse_telephony_websocket`` and
``FastAPIWebsocketTransport`` with Pipecat's serializers, echoing the caller)
in a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageUrgentFrame,
    TTSAudioRawFrame,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.vonage import VonageFrameSerializer

from harness import RATE, make_transport, pcm, run_pipeline, wait_for
from pipecat_wsclient.protocols import ExotelCarrierSerializer, VonageCarrierSerializer
from pipecat_wsclient.protocols.carrier import CarrierSerializer
from support.processes import phone_bot

pytestmark = pytest.mark.slow  # Pipecat's phone bot in a subprocess

# -- helpers -------------------------------------------------------------------


def setup_for(rate: int) -> SimpleNamespace:
    """What ``setup()`` reads of a FrameProcessorSetup (both sides read only the rate)."""
    return SimpleNamespace(audio_in_sample_rate=rate, audio_out_sample_rate=rate)


class FakeIO:
    """The transport's ProtocolIO without a socket: records what is sent and delivered."""

    def __init__(self):
        self.sent: list[str | bytes] = []
        self.delivered: list[InputAudioRawFrame] = []
        self.tasks: list[asyncio.Task] = []

    async def send(self, message: str | bytes) -> bool:
        self.sent.append(message)
        return True

    async def deliver(self, frame) -> None:
        self.delivered.append(frame)

    def create_task(self, coroutine, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self.tasks.append(task)
        return task

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()

    def json_sent(self) -> list[dict]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]


class FakeStarletteSocket:
    """Enough of a FastAPI WebSocket for ``parse_telephony_websocket`` (it uses iter_text)."""

    def __init__(self, messages: list[str | bytes]):
        self._messages = messages

    async def iter_text(self):
        for message in self._messages:
            if not isinstance(message, str):
                raise KeyError("text")  # what receive_text() does with a binary message
            yield message


async def open_stream(serializer: CarrierSerializer, rate: int) -> list[str | bytes]:
    await serializer.setup(setup_for(rate))
    return await serializer.session_start_messages()


async def send_audio(serializer: CarrierSerializer, audio: bytes, rate: int) -> list[str | bytes]:
    out = await serializer.serialize(OutputAudioRawFrame(audio, rate, 1))
    assert out is None or isinstance(out, list)
    return out or []


# == Exotel ===================================================================


def exotel(**kwargs) -> ExotelCarrierSerializer:
    """A serializer with known ids, in 20 ms chunks unless asked (Exotel sends ~100 ms)."""
    kwargs.setdefault("chunk_ms", 20)
    return ExotelCarrierSerializer(
        stream_sid="stream-1",
        call_sid="call-1",
        account_sid="acct-1",
        from_number="+919876543210",
        to_number="+918047491899",
        custom_parameters={"user": "42", "lang": "hi"},
        **kwargs,
    )


async def test_exotel_opening_messages_connected_then_start():
    ser = exotel()
    connected, start = (json.loads(m) for m in await open_stream(ser, 8000))
    assert connected == {"event": "connected"}
    assert start == {
        "event": "start",
        "sequence_number": "1",
        "stream_sid": "stream-1",
        "start": {
            "stream_sid": "stream-1",
            "call_sid": "call-1",
            "account_sid": "acct-1",
            "from": "+919876543210",
            "to": "+918047491899",
            "custom_parameters": {"user": "42", "lang": "hi"},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        },
    }


async def test_exotel_defaults_are_random_ids_and_media_format_follows_rate():
    a, b = ExotelCarrierSerializer(), ExotelCarrierSerializer(sample_rate=16000)
    assert a.stream_sid != b.stream_sid and a.call_sid != b.call_sid
    assert len(a.stream_sid) == 32 and int(a.stream_sid, 16) >= 0
    start = json.loads((await open_stream(b, 16000))[1])
    assert start["start"]["media_format"]["sample_rate"] == "16000"
    custom = ExotelCarrierSerializer(media_format={"encoding": "base64", "bit_rate": "128kbps"})
    start = json.loads((await open_stream(custom, 16000))[1])
    assert start["start"]["media_format"] == {"encoding": "base64", "bit_rate": "128kbps"}


async def test_exotel_start_is_detected_by_pipecat_runner_with_our_ids():
    messages = await open_stream(exotel(), 8000)
    kind, call = await parse_telephony_websocket(FakeStarletteSocket(messages))
    assert kind == "exotel"
    assert call.stream_id == "stream-1"
    assert call.call_id == "call-1"
    assert call["account_sid"] == "acct-1"
    assert call["from"] == "+919876543210" and call["to"] == "+918047491899"
    assert call["custom_parameters"] == {"user": "42", "lang": "hi"}


async def test_exotel_media_20ms_chunks_of_320_bytes_with_sequence_chunk_timestamp():
    ser = exotel()
    await open_stream(ser, 8000)
    audio = pcm(0.1, rate=8000, seed=3)  # 100 ms at 8 kHz: 5 chunks
    messages = [json.loads(m) for m in await send_audio(ser, audio, 8000)]
    assert [m["event"] for m in messages] == ["media"] * 5
    assert [m["sequence_number"] for m in messages] == ["2", "3", "4", "5", "6"]
    assert [m["media"]["chunk"] for m in messages] == ["1", "2", "3", "4", "5"]
    assert [m["media"]["timestamp"] for m in messages] == ["20", "40", "60", "80", "100"]
    assert all(m["stream_sid"] == "stream-1" for m in messages)
    payloads = [base64.b64decode(m["media"]["payload"]) for m in messages]
    assert {len(p) for p in payloads} == {320} == {ser.chunk_bytes}
    assert b"".join(payloads) == audio  # raw/slin: PCM as is, byte exact


async def test_exotel_partial_chunks_carry_over_and_numbering_continues():
    ser = exotel()
    await open_stream(ser, 8000)
    audio = pcm(0.05, rate=8000, seed=4)  # 800 bytes
    first = await send_audio(ser, audio[:500], 8000)  # one chunk, 180 bytes pending
    second = await send_audio(ser, audio[500:], 8000)  # 480 bytes: one chunk, 160 pending
    assert len(first) == 1 and len(second) == 1
    chunks = [json.loads(m)["media"] for m in first + second]
    assert [c["chunk"] for c in chunks] == ["1", "2"]
    assert b"".join(base64.b64decode(c["payload"]) for c in chunks) == audio[:640]


async def test_exotel_caller_audio_is_what_pipecat_exotel_serializer_reads():
    ser = exotel()
    await open_stream(ser, 8000)
    bot = ExotelFrameSerializer("stream-1")
    await bot.setup(setup_for(8000))
    audio = pcm(0.2, rate=8000, seed=5)
    frames = [await bot.deserialize(m) for m in await send_audio(ser, audio, 8000)]
    assert all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 8000 for f in frames)
    assert b"".join(f.audio for f in frames) == audio


async def test_exotel_pipeline_rate_is_resampled_to_8k():
    ser = exotel()
    await open_stream(ser, 16000)
    messages = await send_audio(ser, pcm(1.0, rate=16000, seed=6), 16000)
    total = sum(len(base64.b64decode(json.loads(m)["media"]["payload"])) for m in messages)
    assert 15000 <= total <= 16000  # ~1 s at 8 kHz (the resampler may hold a few ms back)


async def test_exotel_16k_and_24k_streams_use_multiples_of_320_bytes():
    for rate, size in ((16000, 640), (24000, 960)):
        ser = exotel(sample_rate=rate)
        await open_stream(ser, rate)
        messages = await send_audio(ser, pcm(0.1, rate=rate, seed=7), rate)
        sizes = {len(base64.b64decode(json.loads(m)["media"]["payload"])) for m in messages}
        assert sizes == {size} and size % 320 == 0
    big = exotel(chunk_ms=100)
    await open_stream(big, 8000)
    (message,) = await send_audio(big, pcm(0.1, rate=8000, seed=8), 8000)
    assert len(base64.b64decode(json.loads(message)["media"]["payload"])) == 1600  # 5 x 320


async def test_exotel_sends_about_100_ms_per_message_by_default_as_exotel_does():
    ser = ExotelCarrierSerializer()
    await open_stream(ser, 8000)
    messages = await send_audio(ser, pcm(0.2, rate=8000, seed=3), 8000)
    sizes = [len(base64.b64decode(json.loads(m)["media"]["payload"])) for m in messages]
    assert sizes == [1600, 1600]  # 100 ms of 16-bit PCM at 8 kHz each


def test_exotel_rejects_rates_and_chunk_sizes_exotel_does_not_use():
    with pytest.raises(ValueError):
        ExotelCarrierSerializer(sample_rate=44100)
    with pytest.raises(ValueError):
        ExotelCarrierSerializer(chunk_ms=30)  # 480 bytes: not a multiple of 320
    with pytest.raises(ValueError):
        ExotelCarrierSerializer(chunk_ms=0)


async def test_exotel_dtmf_message_and_pipecat_reads_it_as_input_dtmf():
    ser = exotel()
    await open_stream(ser, 8000)
    (message,) = await ser.serialize(OutputDTMFFrame(button=KeypadEntry.ONE))
    assert json.loads(message) == {
        "event": "dtmf",
        "sequence_number": "2",
        "stream_sid": "stream-1",
        "dtmf": {"digit": "1", "duration": "100"},
    }
    bot = ExotelFrameSerializer("stream-1")
    frame = await bot.deserialize(message)
    assert isinstance(frame, InputDTMFFrame) and frame.button == KeypadEntry.ONE
    urgent = await ser.serialize(OutputDTMFUrgentFrame(button=KeypadEntry.POUND))
    assert isinstance(urgent, list)
    assert json.loads(urgent[0])["dtmf"]["digit"] == "#"


async def test_exotel_stop_on_end_once_then_reset_on_a_new_stream():
    ser = exotel(stop_reason="stopped")
    await open_stream(ser, 8000)
    await send_audio(ser, pcm(0.04, rate=8000, seed=9), 8000)  # sequence 2, 3
    stop = await ser.serialize(EndFrame())
    assert isinstance(stop, str)
    assert json.loads(stop) == {
        "event": "stop",
        "sequence_number": "4",
        "stream_sid": "stream-1",
        "stop": {"call_sid": "call-1", "account_sid": "acct-1", "reason": "stopped"},
    }
    assert await ser.serialize(CancelFrame()) is None  # hung up already
    # A reconnection is a new stream: numbering restarts, ids are kept.
    connected, start = (json.loads(m) for m in await ser.session_start_messages())
    assert connected == {"event": "connected"} and start["sequence_number"] == "1"
    (media,) = (json.loads(m) for m in await send_audio(ser, pcm(0.02, 8000, seed=10), 8000))
    assert (media["sequence_number"], media["media"]["chunk"], media["media"]["timestamp"]) == (
        "2",
        "1",
        "20",
    )
    assert json.loads(await ser.serialize(CancelFrame()))["stop"]["reason"] == "stopped"


async def test_exotel_default_stop_reason_and_transport_messages_pass_through():
    ser = ExotelCarrierSerializer()
    await open_stream(ser, 8000)
    assert json.loads(await ser.serialize(EndFrame()))["stop"]["reason"] == "callended"
    custom = await ser.serialize(OutputTransportMessageUrgentFrame(message={"event": "x"}))
    assert custom == '{"event": "x"}'


async def test_exotel_bot_media_plays_in_real_time_marks_echo_after_it():
    ser = exotel()
    await open_stream(ser, 8000)
    io = FakeIO()
    await ser.attach(io)
    bot = ExotelFrameSerializer("stream-1")
    await bot.setup(setup_for(8000))
    audio = pcm(0.3, rate=8000, seed=11)
    start = time.monotonic()
    try:
        await ser.deserialize(await bot.serialize(OutputAudioRawFrame(audio, 8000, 1)))
        mark = {"event": "mark", "stream_sid": "stream-1", "mark": {"name": "greeting"}}
        await ser.deserialize(json.dumps(mark))
        while not io.sent and time.monotonic() - start < 3:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - start
    finally:
        io.close()
    assert b"".join(f.audio for f in io.delivered) == audio
    assert all(f.sample_rate == 8000 for f in io.delivered)
    (echo,) = io.json_sent()
    assert echo == {
        "event": "mark",
        "sequence_number": "2",
        "stream_sid": "stream-1",
        "mark": {"name": "greeting"},
    }
    assert 0.28 <= elapsed < 1.0  # only once the 300 ms before it have played


async def test_exotel_clear_from_pipecat_drops_queued_audio_and_releases_marks():
    ser = exotel()
    await open_stream(ser, 8000)
    io = FakeIO()
    ser._io = io  # no playback task: everything stays queued until the clear
    bot = ExotelFrameSerializer("stream-1")
    await bot.setup(setup_for(8000))
    await ser.deserialize(await bot.serialize(OutputAudioRawFrame(pcm(1.0, 8000), 8000, 1)))
    await ser.deserialize(json.dumps({"event": "mark", "mark": {"name": "m1"}}))
    assert ser.playback.queued_secs == pytest.approx(1.0)
    clear = await bot.serialize(InterruptionFrame())
    assert json.loads(clear) == {"event": "clear", "stream_sid": "stream-1"}
    assert await ser.deserialize(clear) is None
    assert ser.playback.queued_secs == 0
    assert ser.playback.cleared_bytes == 16000
    assert [m["mark"]["name"] for m in io.json_sent()] == ["m1"]
    assert ser.cleared_message() is None  # Exotel does not acknowledge a clear


async def test_exotel_decode_ignores_unknown_and_rejects_broken_messages():
    ser = exotel()
    assert await ser.decode(json.dumps({"event": "something-else"})) is None
    with pytest.raises(ValueError):
        await ser.decode("not json")
    # Malformed media is a ValueError (a counted decode error), not a KeyError (issue 12).
    with pytest.raises(ValueError, match="not base64 text"):
        await ser.decode(json.dumps({"event": "media", "media": {}}))


# == Vonage ===================================================================


def vonage(**kwargs) -> VonageCarrierSerializer:
    return VonageCarrierSerializer(headers={"uuid": "call-uuid-1", "user": {"id": 42}}, **kwargs)


async def test_vonage_first_message_is_connected_with_content_type_and_headers():
    (message,) = await open_stream(vonage(), 16000)
    assert isinstance(message, str)  # text, not binary
    assert json.loads(message) == {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "uuid": "call-uuid-1",
        "user": {"id": 42},
    }
    (message,) = await open_stream(VonageCarrierSerializer(sample_rate=8000), 16000)
    assert json.loads(message) == {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=8000",
    }


def test_vonage_rejects_undocumented_rates_and_headers_that_clash():
    with pytest.raises(ValueError):
        VonageCarrierSerializer(sample_rate=24000)
    with pytest.raises(ValueError):
        VonageCarrierSerializer(headers={"event": "x"})
    with pytest.raises(ValueError):
        VonageCarrierSerializer(headers={"content-type": "audio/l16;rate=8000"})


async def test_vonage_connected_is_what_pipecat_vonage_serializer_expects():
    (message,) = await open_stream(vonage(), 16000)
    bot = VonageFrameSerializer()
    await bot.setup(setup_for(16000))
    assert await bot.deserialize(message) is None  # logged as connected, no frame
    # Pipecat's runner cannot auto-detect Vonage: the bot must choose it itself.
    with pytest.raises(KeyError):
        await parse_telephony_websocket(
            FakeStarletteSocket([message, await vonage().encode_audio(b"\0" * 640)])
        )


async def test_vonage_caller_audio_binary_640_byte_frames_exact():
    ser = vonage()
    await open_stream(ser, 16000)
    audio = pcm(0.1, rate=16000, seed=12)
    messages = await send_audio(ser, audio, 16000)
    assert all(isinstance(m, bytes) for m in messages)
    assert [len(m) for m in messages] == [640] * 5 == [ser.frame_bytes] * 5
    assert b"".join(messages) == audio
    bot = VonageFrameSerializer()
    await bot.setup(setup_for(16000))
    frames = [await bot.deserialize(m) for m in messages]
    assert b"".join(f.audio for f in frames) == audio


async def test_vonage_8k_frames_are_320_bytes_and_partial_frames_wait():
    ser = VonageCarrierSerializer(sample_rate=8000)
    await open_stream(ser, 8000)
    audio = pcm(0.05, rate=8000, seed=13)
    first = await send_audio(ser, audio[:300], 8000)
    assert first == []
    rest = await send_audio(ser, audio[300:], 8000)
    assert [len(m) for m in rest] == [320, 320] and b"".join(rest) == audio[:640]


async def test_vonage_dtmf_message_and_pipecat_reads_it_as_input_dtmf():
    ser = vonage()
    await open_stream(ser, 16000)
    (message,) = await ser.serialize(OutputDTMFFrame(button=KeypadEntry.NINE))
    assert json.loads(message) == {"event": "websocket:dtmf", "digit": "9", "duration": 260}
    bot = VonageFrameSerializer()
    frame = await bot.deserialize(message)
    assert isinstance(frame, InputDTMFFrame) and frame.button == KeypadEntry.NINE


async def test_vonage_hangs_up_by_closing_no_message():
    ser = vonage()
    await open_stream(ser, 16000)
    assert await ser.serialize(EndFrame()) is None
    assert await ser.serialize(CancelFrame()) is None
    assert ser.stop_message() is None


async def test_vonage_bot_audio_binary_is_played_and_resampled_to_pipeline_rate():
    ser = vonage()
    await open_stream(ser, 16000)
    io = FakeIO()
    await ser.attach(io)
    bot = VonageFrameSerializer()
    await bot.setup(setup_for(16000))
    audio = pcm(0.2, rate=16000, seed=14)
    try:
        data = await bot.serialize(OutputAudioRawFrame(audio, 16000, 1))
        assert isinstance(data, bytes)
        await ser.deserialize(data)
        await ser.deserialize(b"")  # empty binary: nothing
        start = time.monotonic()
        while len(b"".join(f.audio for f in io.delivered)) < len(audio):
            assert time.monotonic() - start < 3
            await asyncio.sleep(0.01)
    finally:
        io.close()
    assert b"".join(f.audio for f in io.delivered) == audio
    # At 8 kHz on the wire and 16 kHz in the pipeline the clock gets resampled audio.
    ser8 = VonageCarrierSerializer(sample_rate=8000)
    await open_stream(ser8, 16000)
    await ser8.deserialize(pcm(1.0, rate=8000, seed=15))
    assert 0.9 <= ser8.playback.queued_secs <= 1.0  # the resampler holds a few ms back


async def test_vonage_clear_from_pipecat_drops_queued_audio_and_is_acknowledged():
    ser = vonage()
    await open_stream(ser, 16000)
    io = FakeIO()
    ser._io = io  # no playback task: everything stays queued until the clear
    await ser.deserialize(pcm(1.0, rate=16000, seed=16))
    await ser.deserialize(json.dumps({"action": "notify", "payload": {"turn": 1}}))
    bot = VonageFrameSerializer()
    clear = await bot.serialize(InterruptionFrame())
    assert json.loads(clear) == {"action": "clear"}
    await ser.deserialize(clear)
    assert ser.playback.queued_secs == 0 and ser.playback.cleared_bytes == 32000
    assert io.json_sent() == [
        {"event": "websocket:notify", "payload": {"turn": 1}},
        {"event": "websocket:cleared"},
    ]
    assert await bot.deserialize(io.sent[-1]) is None  # Pipecat logs the acknowledgement


async def test_vonage_notify_is_answered_once_the_audio_before_it_has_played():
    ser = vonage()
    await open_stream(ser, 16000)
    io = FakeIO()
    await ser.attach(io)
    start = time.monotonic()
    try:
        await ser.deserialize(pcm(0.3, rate=16000, seed=17))
        await ser.deserialize(json.dumps({"action": "notify", "payload": {"id": "a", "n": [1]}}))
        while not io.sent and time.monotonic() - start < 3:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - start
    finally:
        io.close()
    assert io.json_sent() == [{"event": "websocket:notify", "payload": {"id": "a", "n": [1]}}]
    assert 0.28 <= elapsed < 1.0


async def test_vonage_decode_ignores_other_text_and_rejects_broken_json():
    ser = vonage()
    assert await ser.decode(json.dumps({"action": "something"})) is None
    assert await ser.decode(json.dumps({"event": "x"})) is None
    assert await ser.decode("[1, 2]") is None
    with pytest.raises(ValueError):
        await ser.decode("not json")
    mark = await ser.decode(json.dumps({"action": "notify"}))
    assert mark is not None and ser.mark_echo(mark.name) == json.dumps(
        {"event": "websocket:notify", "payload": {}}
    )


# == End to end: a real Pipecat phone bot =====================================

MARK_NAME = "echo-1s"  # what phone_bot.py asks to have echoed after ~1 s of its audio


def speechlike(seconds: float, rate: int = RATE, seed: int = 1) -> bytes:
    """Tones under 3.4 kHz in syllable-like bursts and pauses: an envelope to follow."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    tone = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in (220, 470, 1100, 2300))
    envelope = np.zeros(n)
    at = 0
    while at < n:
        burst = int(rng.uniform(0.08, 0.3) * rate)
        ramp = np.hanning(burst) if burst > 1 else np.ones(burst)
        envelope[at : at + burst] = (rng.uniform(0.2, 1.0) * ramp)[: n - at]
        at += burst + int(rng.uniform(0.05, 0.25) * rate)
    samples = 6000 * envelope * tone / 4
    return samples.astype("<i2").tobytes()


def rms_envelope(audio: bytes, rate: int = RATE, window_ms: int = 10) -> np.ndarray:
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
    size = rate * window_ms // 1000
    windows = samples[: len(samples) // size * size].reshape(-1, size)
    return np.sqrt((windows**2).mean(axis=1))


def envelope_correlation(sent: bytes, heard: bytes, max_lag_secs: float = 2.0) -> float:
    """Best Pearson correlation of the 10 ms RMS envelopes over the lags up to ``max_lag``.

    Lags go in 1 ms steps (the heard audio's envelope taken from each offset),
    so a path delay that is not a whole 10 ms does not blur the envelopes.
    """
    a = rms_envelope(sent)
    step = RATE // 1000
    best = -1.0
    for lag in range(int(max_lag_secs * 1000)):
        b = rms_envelope(heard[2 * lag * step :])
        b = np.concatenate([b, np.zeros(max(0, len(a) - len(b)))])[: len(a)]
        if b.any():
            best = max(best, float(np.corrcoef(a, b)[0, 1]))
    return best


def reported(bot, event: str, **match) -> list[dict]:
    return [r for r in bot.reports(event=event) if all(r.get(k) == v for k, v in match.items())]


def received(bot, event: str) -> list[dict]:
    """The carrier messages of type ``event`` the bot's serializer was given."""
    return [
        r["message"] for r in bot.reports(event="received") if r["message"].get("event") == event
    ]


def record_mark_echoes(serializer: CarrierSerializer) -> list[float]:
    """Seconds of the bot's audio played (started) when each mark was echoed."""
    played_at_echo: list[float] = []
    echo_mark = serializer.mark_echo

    def recording_mark_echo(name: str) -> str | None:
        played_at_echo.append(serializer.playback.played_bytes / (2 * RATE))
        return echo_mark(name)

    serializer.mark_echo = recording_mark_echo  # type: ignore[method-assign]
    return played_at_echo


async def call_and_echo(bot, serializer: CarrierSerializer, seconds: float = 3.0):
    """Send speech-like audio to the echo bot; return what was sent and the finished pipeline."""
    sent = speechlike(seconds, seed=21)
    # A second of silence after it, as a caller keeps sending: it pushes the end
    # of the speech through the resamplers on the way (each holds a few ms back).
    silence = bytes(2 * RATE)
    transport = make_transport(bot.uri, serializer=serializer)
    async with run_pipeline(transport) as p:
        await p.send(TTSAudioRawFrame(sent + silence, RATE, 1))
        await wait_for(lambda: len(p.collector.audio()) >= len(sent) + len(silence) // 2, 20)
        await p.send(OutputDTMFFrame(button=KeypadEntry.ONE))
        await wait_for(lambda: reported(bot, "dtmf"), 10)
        await p.end()
    return sent, p


async def test_e2e_exotel_detected_echoed_marked_dtmf_and_stopped():
    serializer = ExotelCarrierSerializer(
        chunk_ms=20,
        from_number="+919800000001",
        to_number="+918000000002",
        custom_parameters={"user": "42", "campaign": "e2e"},
    )
    played_at_echo = record_mark_echoes(serializer)
    with phone_bot() as bot:
        sent, p = await call_and_echo(bot, serializer)
        await wait_for(lambda: reported(bot, "finished"), 10)
    assert not p.errors
    # Pipecat's runner detected Exotel and read our ids and custom parameters.
    (start,) = bot.reports(event="start")
    assert start["provider"] == "exotel"
    call = start["call_data"]
    assert (call["stream_id"], call["call_id"]) == (serializer.stream_sid, serializer.call_sid)
    assert call["account_sid"] == serializer.account_sid
    assert (call["from"], call["to"]) == ("+919800000001", "+918000000002")
    assert call["custom_parameters"] == {"user": "42", "campaign": "e2e"}
    handshake = [r["message"]["event"] for r in bot.reports(event="handshake")]
    assert handshake == ["connected", "start"]
    # The echo came back through 8 kHz PCM both ways, in time with what was sent.
    heard = p.collector.audio()
    assert envelope_correlation(sent, heard) > 0.8
    # The bot's mark was echoed, once the second of audio before it had played.
    assert reported(bot, "mark-sent", name=MARK_NAME)
    (mark,) = received(bot, "mark")
    assert mark["mark"] == {"name": MARK_NAME} and mark["stream_sid"] == serializer.stream_sid
    (played,) = played_at_echo
    assert 0.9 <= played <= 1.5  # the bot asked after ~1 s of its audio (less resampler tails)
    # DTMF 1 reached the bot's pipeline as an InputDTMFFrame; the hang-up was a stop.
    assert [r["digit"] for r in bot.reports(event="dtmf")] == ["1"]
    (stop,) = received(bot, "stop")
    assert stop["stop"]["reason"] == "callended"
    assert stop["stop"]["call_sid"] == serializer.call_sid
    sequence = [int(m["sequence_number"]) for m in [mark, *received(bot, "dtmf"), stop]]
    assert sequence == sorted(sequence) and len(set(sequence)) == 3
    (gone,) = bot.reports(event="disconnected")
    assert gone["audio_in_secs"] == pytest.approx(len(sent) / (2 * RATE) + 1.0, abs=0.15)


async def clear_backlog(bot, serializer: CarrierSerializer):
    """Send 4 s at once to an unpaced bot, then press 9 while its echo is still queued."""
    sent = speechlike(4.0, seed=22)
    transport = make_transport(
        bot.uri + "?pace=off", serializer=serializer, audio_out_send_lead_secs=10.0
    )
    async with run_pipeline(transport) as p:
        await p.send(TTSAudioRawFrame(sent, RATE, 1))
        await wait_for(lambda: serializer.playback.queued_secs > 2.0, 15)
        await p.send(OutputDTMFUrgentFrame(button=KeypadEntry.NINE))
        await wait_for(lambda: serializer.playback.cleared_bytes > 0, 10)
        await asyncio.sleep(0.5)
        await p.end()
    return sent, p


async def test_e2e_exotel_dtmf_9_makes_the_bot_clear_and_queued_playback_is_dropped():
    serializer = ExotelCarrierSerializer()
    played_at_echo = record_mark_echoes(serializer)
    with phone_bot() as bot:
        sent, p = await clear_backlog(bot, serializer)
        await wait_for(lambda: reported(bot, "finished"), 10)
    assert not p.errors
    assert [r["digit"] for r in bot.reports(event="dtmf")] == ["9"]
    assert reported(bot, "clear-sent")
    heard = len(p.collector.audio())
    assert serializer.playback.cleared_bytes >= 2 * RATE * 1.0  # over a second dropped
    assert heard + serializer.playback.cleared_bytes <= len(sent) * 1.02
    assert heard < len(sent) * 0.75
    # The mark queued after the bot's first second was released by the clear,
    # before that second had played.
    (mark,) = received(bot, "mark")
    assert mark["mark"] == {"name": MARK_NAME}
    (played,) = played_at_echo
    assert played < 0.9


async def test_e2e_vonage_connected_echoed_dtmf_and_closed():
    serializer = VonageCarrierSerializer(headers={"uuid": "e2e-call-1", "user": "42"})
    with phone_bot(provider="vonage") as bot:
        sent, p = await call_and_echo(bot, serializer)
        await wait_for(lambda: reported(bot, "finished"), 10)
    assert not p.errors
    (start,) = bot.reports(event="start")
    assert start["provider"] == "vonage"
    # Pipecat's Vonage serializer got our first message, with the custom headers.
    (connected,) = received(bot, "websocket:connected")
    assert connected == {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "uuid": "e2e-call-1",
        "user": "42",
    }
    heard = p.collector.audio()
    assert envelope_correlation(sent, heard) > 0.8
    assert [r["digit"] for r in bot.reports(event="dtmf")] == ["1"]
    # No mark on Vonage's side of the bot, and the hang-up is the socket closing.
    assert not reported(bot, "mark-sent") and not received(bot, "websocket:notify")
    assert [m["event"] for m in (r["message"] for r in bot.reports(event="received"))] == [
        "websocket:connected",
        "websocket:dtmf",
    ]
    (gone,) = bot.reports(event="disconnected")
    assert gone["audio_in_secs"] == pytest.approx(len(sent) / (2 * RATE) + 1.0, abs=0.15)


async def test_e2e_vonage_dtmf_9_makes_the_bot_clear_and_the_clear_is_acknowledged():
    serializer = VonageCarrierSerializer()
    with phone_bot(provider="vonage") as bot:
        sent, p = await clear_backlog(bot, serializer)
        await wait_for(lambda: received(bot, "websocket:cleared"), 10)
        await wait_for(lambda: reported(bot, "finished"), 10)
    assert not p.errors
    assert [r["digit"] for r in bot.reports(event="dtmf")] == ["9"]
    assert reported(bot, "clear-sent")
    heard = len(p.collector.audio())
    assert serializer.playback.cleared_bytes >= 2 * RATE * 1.0
    assert heard + serializer.playback.cleared_bytes <= len(sent) * 1.02
    assert heard < len(sent) * 0.75
