"""Twilio's, Telnyx's and Plivo's side of a phone bot's media stream.

Unit tests check each serializer's messages against the carrier's documented
protocol and against what Pipecat's own serializers and
``parse_telephony_websocket`` (the bot side) make of them, with no sockets.
The end-to-end tests call ``support/phone_bot.py``, a Pipecat telephony bot
built as Pipecat's examples build one, through our transport.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFUrgentFrame,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer

from harness import RATE, make_transport, run_pipeline, wait_for
from pipecat_wsclient.protocols import (
    PlivoCarrierSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
)
from pipecat_wsclient.protocols.carrier import CarrierSerializer, Media, mulaw_to_pcm
from support.processes import PhoneBot, phone_bot

CUSTOM = {"userId": "42", "lang": "en"}

# -- the carriers --------------------------------------------------------------


@dataclass
class Carrier:
    """What differs between carriers, for the shared tests."""

    name: str
    make: Callable[..., Any]  # the serializer class
    sequence_key: str  # the name of the sequence number field
    sequence_type: type  # its JSON type
    stream_key: str  # where a message carries the stream id
    call_id: Callable[[Any], str]
    mark_echo_event: str  # what the bot receives when its mark has played
    stop_event: str | None  # the carrier's hang-up message, if it has one

    def __str__(self) -> str:
        return self.name


TWILIO = Carrier(
    "twilio",
    TwilioCarrierSerializer,
    "sequenceNumber",
    str,
    "streamSid",
    lambda s: s.call_sid,
    "mark",
    "stop",
)
TELNYX = Carrier(
    "telnyx",
    TelnyxCarrierSerializer,
    "sequence_number",
    str,
    "stream_id",
    lambda s: s.call_control_id,
    "mark",
    "stop",
)
PLIVO = Carrier(
    "plivo",
    PlivoCarrierSerializer,
    "sequenceNumber",
    int,
    "streamId",
    lambda s: s.call_id,
    "playedStream",
    None,
)
CARRIERS = [TWILIO, TELNYX, PLIVO]
carriers = pytest.mark.parametrize("carrier", CARRIERS, ids=str)


def stream_id(serializer: Any) -> str:
    return getattr(serializer, "stream_sid", None) or serializer.stream_id


def setup_for(rate: int) -> Any:
    """What ``setup()`` reads of a FrameProcessorSetup."""
    return SimpleNamespace(audio_in_sample_rate=rate, audio_out_sample_rate=rate)


class FakeIO:
    """The transport's ProtocolIO without a socket: records what is sent and delivered."""

    def __init__(self):
        self.sent: list[str | bytes] = []
        self.delivered: list = []

    async def send(self, message: str | bytes) -> bool:
        self.sent.append(message)
        return True

    async def deliver(self, frame) -> None:
        self.delivered.append(frame)

    def create_task(self, coroutine, name: str):
        coroutine.close()  # no playback loop: the tests drive the clock themselves


def tone(seconds: float, rate: int = 8000) -> bytes:
    """A 300 Hz + 700 Hz tone, 16-bit PCM."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
    return (wave * 32767).astype("<i2").tobytes()


async def started(carrier: Carrier, rate: int = RATE, **kwargs) -> tuple[Any, list[dict]]:
    serializer = carrier.make(**kwargs)
    await serializer.setup(setup_for(rate))
    opening = [json.loads(m) for m in await serializer.session_start_messages()]
    return serializer, opening


async def media_payloads(serializer: CarrierSerializer, seconds: float) -> list[str | bytes]:
    """``seconds`` of tone at 8 kHz (no resampling), serialized."""
    return payloads(await serializer.serialize(OutputAudioRawFrame(tone(seconds), 8000, 1)))


async def media_messages(serializer: CarrierSerializer, seconds: float) -> list[dict]:
    return [json.loads(m) for m in await media_payloads(serializer, seconds)]


def payloads(payload: str | bytes | list[str | bytes] | None) -> list[str | bytes]:
    """What ``serialize`` returned, as a list of messages."""
    if payload is None:
        return []
    return payload if isinstance(payload, list) else [payload]


# -- unit: opening messages ----------------------------------------------------


async def test_twilio_opening_messages():
    serializer, opening = await started(TWILIO, custom_parameters=CUSTOM)
    connected, start = opening
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["streamSid"] == serializer.stream_sid
    body = start["start"]
    assert body["streamSid"] == serializer.stream_sid
    assert body["callSid"].startswith("CA") and len(body["callSid"]) == 34
    assert body["accountSid"].startswith("AC") and body["tracks"] == ["inbound"]
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert body["customParameters"] == CUSTOM


async def test_telnyx_opening_messages():
    serializer, opening = await started(
        TELNYX, custom_parameters=CUSTOM, client_state="aGVsbG8=", from_number="+15550100001"
    )
    connected, start = opening
    assert connected == {"event": "connected", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequence_number"] == "1"
    assert start["stream_id"] == serializer.stream_id
    body = start["start"]
    assert body["call_control_id"].startswith("v3:")
    assert body["call_control_id"] == serializer.call_control_id
    for key in ("user_id", "call_session_id"):
        assert len(body[key]) == 36  # UUIDs
    assert body["from"] == "+15550100001" and body["to"].startswith("+1")
    assert body["client_state"] == "aGVsbG8="
    assert body["custom_parameters"] == CUSTOM
    assert body["media_format"] == {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
    # no client_state unless one is set
    _, (_, start) = await started(TELNYX)
    assert "client_state" not in start["start"]


async def test_plivo_opening_messages():
    serializer, opening = await started(PLIVO, custom_parameters=CUSTOM)
    (start,) = opening  # Plivo sends no "connected"
    assert start["event"] == "start" and start["sequenceNumber"] == 1
    body = start["start"]
    assert body["streamId"] == serializer.stream_id
    assert body["callId"] == serializer.call_id and len(body["callId"]) == 36
    assert body["accountId"].startswith("MA") and len(body["accountId"]) == 20
    assert body["tracks"] == ["inbound"]
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000}
    assert start["extra_headers"] == "userId=42;lang=en"


@carriers
async def test_ids_are_random_unless_given(carrier: Carrier):
    a, b = carrier.make(), carrier.make()
    assert stream_id(a) != stream_id(b) and carrier.call_id(a) != carrier.call_id(b)
    key = "stream_sid" if carrier is TWILIO else "stream_id"
    assert stream_id(carrier.make(**{key: "S1"})) == "S1"


# -- unit: media ---------------------------------------------------------------


@carriers
async def test_media_chunks_sequence_and_timestamps(carrier: Carrier):
    serializer, opening = await started(carrier)
    media = await media_messages(serializer, 0.1)  # 5 chunks of 20 ms
    assert len(media) == 5
    sequences = [m[carrier.sequence_key] for m in media]
    assert all(isinstance(s, carrier.sequence_type) for s in sequences)
    first = int(opening[-1][carrier.sequence_key]) + 1
    assert [int(s) for s in sequences] == list(range(first, first + 5))
    chunks = [int(m["media"]["chunk"]) for m in media]
    assert chunks == [1, 2, 3, 4, 5]
    stamps = [int(m["media"]["timestamp"]) for m in media]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [20] * 4
    for message in media:
        assert message["event"] == "media" and message["media"]["track"] == "inbound"
        assert message[carrier.stream_key] == stream_id(serializer)
        assert len(base64.b64decode(message["media"]["payload"])) == 160  # 20 ms of mu-law
    # the payload is the audio, mu-law encoded
    decoded = b"".join(mulaw_to_pcm(base64.b64decode(m["media"]["payload"])) for m in media)
    sent = np.frombuffer(tone(0.1), "<i2").astype(float)
    back = np.frombuffer(decoded, "<i2").astype(float)
    assert np.corrcoef(sent, back)[0, 1] > 0.99


async def test_twilio_and_telnyx_timestamps_count_from_zero():
    for carrier in (TWILIO, TELNYX):
        serializer, _ = await started(carrier)
        media = await media_messages(serializer, 0.04)
        assert [m["media"]["timestamp"] for m in media] == ["0", "20"]


async def test_plivo_timestamps_are_unix_milliseconds_and_headers_repeat():
    before = int(time.time() * 1000)
    serializer, _ = await started(PLIVO, custom_parameters=CUSTOM)
    media = await media_messages(serializer, 0.04)
    assert isinstance(media[0]["media"]["chunk"], int)
    assert before <= int(media[0]["media"]["timestamp"]) <= int(time.time() * 1000)
    assert all(m["extra_headers"] == "userId=42;lang=en" for m in media)


@carriers
async def test_pipeline_rate_audio_is_chunked_at_8khz(carrier: Carrier):
    serializer, _ = await started(carrier)
    frame = OutputAudioRawFrame(tone(0.5, RATE), RATE, 1)
    media = [json.loads(m) for m in payloads(await serializer.serialize(frame))]
    assert 20 <= len(media) <= 25  # the resampler holds a little back
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)


@carriers
async def test_new_stream_restarts_sequence_and_chunks(carrier: Carrier):
    serializer, first_opening = await started(carrier)
    await media_messages(serializer, 0.1)
    again = [json.loads(m) for m in await serializer.session_start_messages()]
    assert again == first_opening  # same ids, sequence numbers from 1 again
    media = await media_messages(serializer, 0.04)
    assert [int(m["media"]["chunk"]) for m in media] == [1, 2]
    assert int(media[0][carrier.sequence_key]) == int(again[-1][carrier.sequence_key]) + 1


# -- unit: DTMF, marks, stop ---------------------------------------------------


async def test_twilio_dtmf_mark_and_stop_shapes():
    serializer, _ = await started(TWILIO)
    sid = serializer.stream_sid
    dtmf = json.loads(serializer.dtmf_message("5") or "")
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": "2",
        "dtmf": {"track": "inbound_track", "digit": "5"},
        "streamSid": sid,
    }
    mark = json.loads(serializer.mark_echo("m1") or "")
    assert mark == {
        "event": "mark",
        "sequenceNumber": "3",
        "mark": {"name": "m1"},
        "streamSid": sid,
    }
    stop = json.loads(serializer.stop_message() or "")
    assert stop["event"] == "stop" and stop["sequenceNumber"] == "4"
    assert stop["stop"] == {"accountSid": serializer.account_sid, "callSid": serializer.call_sid}


async def test_telnyx_dtmf_mark_and_stop_shapes():
    serializer, _ = await started(TELNYX)
    sid = serializer.stream_id
    dtmf = json.loads(serializer.dtmf_message("#") or "")
    assert dtmf["event"] == "dtmf" and dtmf["sequence_number"] == "2"
    assert dtmf["stream_id"] == sid and dtmf["dtmf"] == {"digit": "#"}
    assert dtmf["occurred_at"].endswith("Z")
    mark = json.loads(serializer.mark_echo("m1") or "")
    assert mark == {
        "event": "mark",
        "sequence_number": "3",
        "mark": {"name": "m1"},
        "stream_id": sid,
    }
    stop = json.loads(serializer.stop_message() or "")
    assert stop == {
        "event": "stop",
        "sequence_number": "4",
        "stop": {"user_id": serializer.user_id, "call_control_id": serializer.call_control_id},
        "stream_id": sid,
    }


async def test_plivo_dtmf_played_stream_cleared_and_no_stop():
    serializer, _ = await started(PLIVO, custom_parameters={"a": "1"})
    sid = serializer.stream_id
    dtmf = json.loads(serializer.dtmf_message("7") or "")
    assert dtmf["event"] == "dtmf" and dtmf["sequenceNumber"] == 2 and dtmf["streamId"] == sid
    assert dtmf["dtmf"]["track"] == "inbound" and dtmf["dtmf"]["digit"] == "7"
    assert abs(int(dtmf["dtmf"]["timestamp"]) - time.time() * 1000) < 5000
    assert dtmf["extra_headers"] == "a=1"
    played = json.loads(serializer.mark_echo("m1") or "")
    assert played == {"event": "playedStream", "sequenceNumber": 3, "streamId": sid, "name": "m1"}
    cleared = json.loads(serializer.cleared_message() or "")
    assert cleared == {"event": "clearedAudio", "sequenceNumber": 4, "streamId": sid}
    assert serializer.stop_message() is None  # Plivo has no stop message: the socket closes
    assert await serializer.serialize(EndFrame()) is None


@carriers
async def test_dtmf_frames_become_dtmf_events_and_end_sends_stop_once(carrier: Carrier):
    serializer, _ = await started(carrier)
    dtmf = await serializer.serialize(OutputDTMFUrgentFrame(button=KeypadEntry.POUND))
    assert isinstance(dtmf, list) and json.loads(dtmf[0])["dtmf"]["digit"] == "#"
    stop = await serializer.serialize(EndFrame())
    assert (stop is None) == (carrier.stop_event is None)
    assert await serializer.serialize(EndFrame()) is None


# -- unit: what the bot side makes of our messages, and we of its --------------


class FakeWebSocket:
    """Enough of a Starlette WebSocket for ``parse_telephony_websocket``."""

    def __init__(self, messages: list[str]):
        self._messages = messages

    async def iter_text(self) -> AsyncIterator[str]:
        for message in self._messages:
            yield message


def pipecat_serializer(carrier: Carrier, serializer: CarrierSerializer) -> FrameSerializer:
    if carrier is TWILIO:
        return TwilioFrameSerializer(
            stream_id(serializer), params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
        )
    if carrier is TELNYX:
        return TelnyxFrameSerializer(
            stream_id(serializer),
            "PCMU",
            "PCMU",
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    return PlivoFrameSerializer(
        stream_id(serializer), params=PlivoFrameSerializer.InputParams(auto_hang_up=False)
    )


@carriers
async def test_pipecat_detects_the_carrier_and_reads_the_ids(carrier: Carrier):
    serializer = carrier.make(custom_parameters=CUSTOM)
    messages = [str(m) for m in await serializer.session_start_messages()]
    messages += [str(m) for m in await media_payloads(serializer, 0.02)]
    provider, call_data = await parse_telephony_websocket(cast(Any, FakeWebSocket(messages)))
    assert provider == carrier.name
    assert call_data.stream_id == stream_id(serializer)
    assert call_data.call_id == carrier.call_id(serializer)
    if carrier is TWILIO:
        assert call_data.body == CUSTOM
    if carrier is TELNYX:
        assert call_data.from_number == serializer.from_number
        assert call_data.to_number == serializer.to_number
        assert call_data["outbound_encoding"] == "PCMU"


@carriers
async def test_pipecat_decodes_our_media_and_dtmf(carrier: Carrier):
    serializer, _ = await started(carrier)
    bot = pipecat_serializer(carrier, serializer)
    await bot.setup(setup_for(RATE))
    media = await media_payloads(serializer, 1.0)
    frames = [await bot.deserialize(m) for m in media]
    audio = [f for f in frames if isinstance(f, InputAudioRawFrame)]
    assert audio and all(f.sample_rate == RATE for f in audio)
    assert sum(len(f.audio) for f in audio) > 0.8 * 2 * RATE  # its resampler works in blocks
    dtmf = await bot.deserialize(serializer.dtmf_message("1") or "")
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button == KeypadEntry.ONE


@carriers
async def test_we_play_pipecat_audio_and_echo_marks_once_played(carrier: Carrier):
    serializer, _ = await started(carrier, rate=8000)  # no resampling: exact playback
    io = FakeIO()
    await serializer.attach(io)
    bot = pipecat_serializer(carrier, serializer)
    await bot.setup(setup_for(8000))
    audio = await bot.serialize(OutputAudioRawFrame(tone(0.2), 8000, 1))
    assert audio is not None
    await serializer.deserialize(audio)
    mark = {
        "twilio": {"event": "mark", "streamSid": stream_id(serializer), "mark": {"name": "m"}},
        "telnyx": {"event": "mark", "mark": {"name": "m"}},
        "plivo": {"event": "checkpoint", "streamId": stream_id(serializer), "name": "m"},
    }[carrier.name]
    await serializer.deserialize(json.dumps(mark))
    assert 0.15 < serializer.playback.queued_secs <= 0.2
    now = time.monotonic()
    started_playing = serializer.playback.advance(now)
    assert started_playing.marks == [] and len(b"".join(started_playing.audio)) == 3200
    assert serializer.playback.advance(now + 0.1).marks == []  # still playing
    assert serializer.playback.advance(now + 0.25).marks == ["m"]
    assert json.loads(serializer.mark_echo("m") or "")["event"] == carrier.mark_echo_event


@carriers
async def test_clear_drops_queued_audio_and_settles_marks(carrier: Carrier):
    serializer, _ = await started(carrier, rate=8000)  # no resampling: exact playback
    io = FakeIO()
    await serializer.attach(io)
    bot = pipecat_serializer(carrier, serializer)
    await bot.setup(setup_for(8000))
    for _ in range(10):
        audio = await bot.serialize(OutputAudioRawFrame(tone(0.1), 8000, 1))
        await serializer.deserialize(audio or "")
    mark_request = {
        "twilio": {"event": "mark", "streamSid": stream_id(serializer), "mark": {"name": "m"}},
        "telnyx": {"event": "mark", "mark": {"name": "m"}},
        "plivo": {"event": "checkpoint", "streamId": stream_id(serializer), "name": "m"},
    }[carrier.name]
    await serializer.deserialize(json.dumps(mark_request))
    clear = await bot.serialize(InterruptionFrame())
    await serializer.deserialize(clear or "")
    assert serializer.playback.cleared_bytes > 0 and serializer.playback.queued_secs == 0
    sent = [json.loads(m) for m in io.sent]
    if carrier is PLIVO:
        # a checkpoint is acknowledged only if its audio played: just the clearedAudio ack
        assert [m["event"] for m in sent] == ["clearedAudio"]
    else:
        # Twilio and Telnyx return the queued marks on a clear
        assert [(m["event"], m["mark"]["name"]) for m in sent] == [("mark", "m")]
    # later checkpoints are acknowledged again
    assert json.loads(serializer.mark_echo("m") or "")["event"] == carrier.mark_echo_event


async def test_plivo_plays_l16_at_the_rate_it_names_and_refuses_other_formats():
    """Plivo's playAudio may be L16 at 8 or 16 kHz whatever the stream's format (issue 26)."""
    serializer, _ = await started(PLIVO)
    pcm = np.arange(-800, 800, 5, dtype="<i2").tobytes()  # 320 samples, little-endian
    l16 = {
        "event": "playAudio",
        "media": {
            "contentType": "audio/x-l16",
            "sampleRate": 16000,
            "payload": base64.b64encode(pcm).decode(),
        },
    }
    event = await serializer.decode(json.dumps(l16))
    assert isinstance(event, Media) and event.sample_rate == 16000 and event.pcm == pcm
    for media in (
        {"contentType": "audio/x-alaw", "sampleRate": 8000, "payload": "AAA="},
        {"contentType": "audio/x-l16", "sampleRate": 22050, "payload": "AAA="},
    ):
        with pytest.raises(ValueError, match="Plivo plays"):
            await serializer.decode(json.dumps({"event": "playAudio", "media": media}))


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_a_plivo_l16_stream_sends_l16_at_its_rate(rate: int):
    serializer, opening = await started(PLIVO, content_type=f"audio/x-l16;rate={rate}")
    assert opening[0]["start"]["mediaFormat"] == {"encoding": "audio/x-l16", "sampleRate": rate}
    sent = await serializer.serialize(OutputAudioRawFrame(tone(0.1), RATE, 1))
    chunks = [base64.b64decode(json.loads(m)["media"]["payload"]) for m in payloads(sent)]
    assert chunks and all(len(c) == 2 * rate // 50 for c in chunks), [len(c) for c in chunks]


@carriers
async def test_other_messages_are_ignored(carrier: Carrier):
    serializer, _ = await started(carrier)
    assert await serializer.decode(json.dumps({"event": "something-else"})) is None


# -- end to end: a Pipecat phone bot -------------------------------------------


def speech_like(seconds: float, rate: int = RATE, seed: int = 3) -> bytes:
    """Tone bursts (300 Hz + 700 Hz) of varying length and loudness, with pauses."""
    rng = random.Random(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    t = 0
    while t < n:
        on = int(rate * rng.uniform(0.06, 0.3))
        off = int(rate * rng.uniform(0.04, 0.2))
        level = rng.uniform(0.2, 0.8)
        end = min(n, t + on)
        k = np.arange(end - t) / rate
        burst = np.sin(2 * np.pi * 300 * k) + 0.6 * np.sin(2 * np.pi * 700 * k)
        ramp = np.minimum(1, np.minimum(k, (end - t) / rate - k) / 0.01)  # 10 ms fades
        out[t:end] = level * 0.5 * burst * ramp
        t = end + off
    return (out * 32767).astype("<i2").tobytes()


def envelope(pcm: bytes, rate: int = RATE) -> np.ndarray:
    """RMS of each 10 ms."""
    samples = np.frombuffer(pcm, "<i2").astype(float)
    size = rate // 100
    frames = samples[: len(samples) // size * size].reshape(-1, size)
    return np.sqrt((frames**2).mean(axis=1))


def best_correlation(sent: np.ndarray, heard: np.ndarray, max_lag: int = 30) -> float:
    """Highest normalized (Pearson) correlation of ``heard`` against ``sent``, over lags."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        a = sent[max(0, -lag) :]
        b = heard[max(0, lag) :]
        n = min(len(a), len(b))
        if n < 50:
            continue
        r = np.corrcoef(a[:n], b[:n])[0, 1]
        if not math.isnan(r):
            best = max(best, float(r))
    return best


def secs(pcm: bytes) -> float:
    return len(pcm) / (2 * RATE)


@pytest.fixture(scope="module")
def bot() -> Iterator[PhoneBot]:
    with phone_bot() as running:
        yield running


@pytest.mark.slow  # a real call of a few seconds per carrier
@carriers
async def test_call_a_pipecat_phone_bot(carrier: Carrier, bot: PhoneBot):
    serializer = carrier.make(custom_parameters=CUSTOM)
    # 2 s of speech, then silence: the resamplers on the way (16 -> 8 -> 16 kHz, both
    # ways) work in blocks of ~100 ms, and hold the end until more audio pushes it out
    speech = speech_like(2.0)
    audio = speech + bytes(2 * int(0.6 * RATE))
    transport = make_transport(bot.uri, serializer=serializer, audio_out_10ms_chunks=2)
    async with run_pipeline(transport) as p:
        # audio first, as a carrier streams media from the start: Pipecat reads two
        # messages to detect the carrier, and Plivo's second one is media
        await p.send(OutputAudioRawFrame(audio, RATE, 1))
        await wait_for(lambda: bot.conn_of(stream_id(serializer)) is not None, 10)
        conn = bot.conn_of(stream_id(serializer))

        def received(event: str) -> list[dict]:
            return [
                r["message"]
                for r in bot.reports(conn, "received")
                if r["message"].get("event") == event
            ]

        # the mark the bot set after echoing 1 s comes back once that audio has played
        await wait_for(lambda: received(carrier.mark_echo_event), 10)
        heard_at_mark = secs(p.collector.audio())
        # then the rest of the echo
        await wait_for(lambda: secs(p.collector.audio()) >= secs(speech), 10)
        await p.send(OutputDTMFUrgentFrame(button=KeypadEntry.ONE))
        await wait_for(lambda: bot.reports(conn, "dtmf"), 5)
        await p.end()
        await wait_for(lambda: bot.reports(conn, "disconnected"), 5)
    assert not p.errors

    # the bot saw the carrier it was meant to, with our ids and parameters
    (start,) = bot.reports(conn, "start")
    assert start["provider"] == carrier.name
    assert start["call_data"]["stream_id"] == stream_id(serializer)
    assert start["call_data"]["call_id"] == carrier.call_id(serializer)
    handshake = [r["message"] for r in bot.reports(conn, "handshake")]
    start_message = next(m for m in handshake if m.get("event") == "start")
    if carrier is TWILIO:
        assert start["call_data"]["body"] == CUSTOM  # Pipecat reads Twilio's parameters
    elif carrier is TELNYX:
        assert start["call_data"]["from"] == serializer.from_number
        assert start["call_data"]["to"] == serializer.to_number
        assert start_message["start"]["custom_parameters"] == CUSTOM
    else:
        assert start_message["extra_headers"] == "userId=42;lang=en"

    # our audio reached the bot and came back
    heard = p.collector.audio()
    assert secs(speech) <= secs(heard) <= secs(audio), secs(heard)
    (gone,) = bot.reports(conn, "disconnected")
    assert secs(speech) <= gone["audio_in_secs"] <= secs(audio)
    assert best_correlation(envelope(audio), envelope(heard)) > 0.8

    # the mark came back after the audio before it had played (less what the
    # resamplers still held when the bot set it), not before, and not at the end
    (mark,) = received(carrier.mark_echo_event)
    assert (mark.get("mark") or mark)["name"] == "echo-1s"
    assert 0.7 <= heard_at_mark <= 1.5, heard_at_mark
    assert [r["digit"] for r in bot.reports(conn, "dtmf")] == ["1"]
    # hanging up sends the carrier's stop (Plivo has none: the socket closes)
    stops = received("stop")
    if carrier.stop_event:
        (stop,) = stops
        assert stop[carrier.stream_key] == stream_id(serializer)
    else:
        assert stops == []


@carriers
async def test_a_clear_drops_the_playback_backlog(carrier: Carrier, bot: PhoneBot):
    """A bot ahead of real time is interrupted: the audio queued on our side is dropped."""
    serializer = carrier.make()
    audio = speech_like(2.0, seed=5)
    transport = make_transport(
        bot.uri + "?pace=off",
        serializer=serializer,
        audio_out_10ms_chunks=2,
        audio_out_send_lead_secs=3.0,  # we send ahead too: the bot echoes it all at once
    )
    async with run_pipeline(transport) as p:
        # audio first, as a carrier streams media from the start: Pipecat reads two
        # messages to detect the carrier, and Plivo's second one is media
        await p.send(OutputAudioRawFrame(audio, RATE, 1))
        await wait_for(lambda: bot.conn_of(stream_id(serializer)) is not None, 10)
        conn = bot.conn_of(stream_id(serializer))
        await wait_for(lambda: serializer.playback.queued_secs >= 1.0, 5)
        await p.send(OutputDTMFUrgentFrame(button=KeypadEntry.NINE))
        await wait_for(lambda: serializer.playback.cleared_bytes > 0, 5)
        if carrier is PLIVO:
            await wait_for(
                lambda: any(
                    r["message"].get("event") == "clearedAudio"
                    for r in bot.reports(conn, "received")
                ),
                5,
            )
        await wait_for(lambda: serializer.playback.queued_secs == 0, 1)
        heard_at_clear = secs(p.collector.audio())
        await p.end()
    assert not p.errors
    assert bot.reports(conn, "clear-sent") and [r["digit"] for r in bot.reports(conn, "dtmf")] == [
        "9"
    ]
    cleared = serializer.playback.cleared_bytes / (2 * RATE)
    heard = secs(p.collector.audio())
    assert cleared >= 0.5, cleared
    assert heard < secs(audio) - 0.5, heard
    assert heard - heard_at_clear < 0.1  # nothing more played after the clear


@pytest.mark.parametrize("encoding", ["PCMA", "PCMU"])
async def test_telnyx_speaks_the_encoding_pipecats_serializer_is_given(encoding: str):
    """Our Telnyx side and Pipecat's Telnyx serializer agree on PCMA as on PCMU (issue 26)."""
    ours = TelnyxCarrierSerializer(encoding=encoding)
    await ours.setup(setup_for(8000))
    opening = [json.loads(m) for m in await ours.session_start_messages()]
    assert opening[1]["start"]["media_format"]["encoding"] == encoding
    bot = TelnyxFrameSerializer(
        ours.stream_id,
        outbound_encoding=encoding,
        inbound_encoding=encoding,
        params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
    )
    await bot.setup(setup_for(8000))
    pcm = tone(0.1)
    heard = b""
    for message in payloads(await ours.serialize(OutputAudioRawFrame(pcm, 8000, 1))):
        frame = await bot.deserialize(message)
        heard += frame.audio
    corr = np.corrcoef(np.frombuffer(heard, "<i2"), np.frombuffer(pcm[: len(heard)], "<i2"))[0, 1]
    assert corr > 0.99, corr
    said = await bot.serialize(OutputAudioRawFrame(pcm, 8000, 1))
    event = await ours.decode(said)
    assert isinstance(event, Media) and event.sample_rate == 8000
    corr = np.corrcoef(np.frombuffer(event.pcm, "<i2"), np.frombuffer(pcm, "<i2"))[0, 1]
    assert corr > 0.99, corr


def test_telnyx_refuses_an_encoding_it_does_not_stream():
    with pytest.raises(ValueError, match="Telnyx streams"):
        TelnyxCarrierSerializer(encoding="OPUS")
    assert TelnyxCarrierSerializer(encoding="L16", sample_rate=16000).carrier_rate == 16000


async def test_vonage_drops_and_counts_audio_beyond_its_3072_message_buffer():
    """Vonage buffers 3072 messages (61.44 s); a bot that sends 70 s at once loses the rest."""
    from pipecat.serializers.vonage import VonageFrameSerializer

    from pipecat_wsclient.protocols.vonage import VonageCarrierSerializer

    serializer = VonageCarrierSerializer()
    await serializer.setup(setup_for(16000))
    await serializer.session_start_messages()
    await serializer.attach(FakeIO())
    bot = VonageFrameSerializer()
    await bot.setup(setup_for(16000))
    frame = b"\x10\x00" * 320  # 20 ms at 16 kHz: the size Vonage wants
    for _ in range(3500):  # 70 s, sent at once
        await serializer.deserialize(await bot.serialize(OutputAudioRawFrame(frame, 16000, 1)))
    counts = serializer.violations.as_dict()
    assert list(counts) == ["buffer full (audio dropped)"], counts
    queued = serializer.playback.queued_secs
    assert 61.4 <= queued <= 61.5  # 3072 (or 3073) messages kept: what Vonage would play
    assert counts["buffer full (audio dropped)"]["count"] == 3500 - round(queued / 0.02)
