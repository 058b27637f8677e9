"""No audio stuck in a carrier serializer's buffers (issue 12, item 6).

Real pipelines against a real local server that records what arrives (and
plays the bot: it sends a stretch of the bot's audio, then nothing):

- at ``EndFrame`` the caller's last partial chunk (padded with silence) and
  what the outbound resampler holds go out before the hang-up;
- when the bot goes quiet, what the inbound resampler holds reaches the
  pipeline (it used to wait for more audio that never came).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pipecat.frames.frames import OutputAudioRawFrame

from harness import make_transport, run_pipeline, wait_for
from pipecat_wsclient.audio.resample import StreamResampler
from pipecat_wsclient.protocols import (
    ExotelCarrierSerializer,
    PlivoCarrierSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
    VonageCarrierSerializer,
)
from pipecat_wsclient.protocols.audio import mulaw_to_pcm, pcm_to_mulaw
from pipecat_wsclient.protocols.carrier import CarrierSerializer
from support.servers import record_server

CARRIERS: dict[str, Callable[[], CarrierSerializer]] = {
    "twilio": TwilioCarrierSerializer,
    "telnyx": TelnyxCarrierSerializer,
    "plivo": PlivoCarrierSerializer,
    "exotel": lambda: ExotelCarrierSerializer(chunk_ms=20),  # 20 ms chunks, as the others
    "vonage": lambda: VonageCarrierSerializer(sample_rate=8000),
}
carriers = pytest.mark.parametrize("name", list(CARRIERS))


def primed(in_rate: int, out_rate: int) -> int:
    """The silence a resampled stream begins with (the filter's delay, in output samples)."""
    return round((StreamResampler(in_rate, out_rate, low_delay=True).delay_secs or 0) * out_rate)


def tone(seconds: float, rate: int) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()


def caller_pcm(name: str, messages: list[str | bytes]) -> tuple[bytes, list[str]]:
    """The caller's audio in what the server received (16-bit PCM at 8 kHz), and the events."""
    audio = bytearray()
    events: list[str] = []
    for message in messages:
        if isinstance(message, bytes):  # Vonage: raw L16
            audio.extend(message)
            events.append("audio")
            continue
        obj = json.loads(message)
        event = str(obj.get("event"))
        events.append(event)
        if event == "media":
            payload = base64.b64decode(obj["media"]["payload"])
            audio.extend(payload if name == "exotel" else mulaw_to_pcm(payload))
    return bytes(audio), events


def bot_media(name: str, pcm: bytes) -> list[str | bytes]:
    """The bot's 8 kHz audio as its Pipecat serializer frames it, 20 ms a message."""
    messages: list[str | bytes] = []
    for i in range(0, len(pcm), 320):
        chunk = pcm[i : i + 320]
        payload = base64.b64encode(chunk if name == "exotel" else pcm_to_mulaw(chunk)).decode()
        message: dict[str, Any]
        if name == "vonage":
            messages.append(chunk)
            continue
        if name == "plivo":
            message = {
                "event": "playAudio",
                "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": payload},
            }
        else:
            message = {"event": "media", "media": {"payload": payload}}
        messages.append(json.dumps(message))
    return messages


@carriers
@pytest.mark.parametrize(
    ("rate", "seconds"),
    [(16000, 0.5), (8000, 0.51)],
    ids=["resampler tail", "partial chunk"],
)
async def test_end_frame_sends_the_last_partial_chunk_and_the_resampler_tail(
    name: str, rate: int, seconds: float
):
    """All the caller's audio arrives before the hang-up, the last chunk padded.

    At 16 kHz, 0.5 s is whole 20 ms chunks but the resampler to 8 kHz holds
    the end back; at 8 kHz (no resampling) 0.51 s leaves 10 ms short of a chunk.
    """
    serializer = CARRIERS[name]()
    async with record_server() as server:
        transport = make_transport(server.uri, serializer=serializer, audio_out_10ms_chunks=1)
        async with run_pipeline(transport, rate=rate) as p:
            await p.send(OutputAudioRawFrame(tone(seconds, rate), rate, 1))
            took = await p.end()
        await wait_for(lambda: server.close_codes, 5)
    assert not p.errors and took < 3
    audio, events = caller_pcm(name, server.messages)
    # A resampled stream begins with the filter's delay of silence.
    samples = seconds * 8000 + (primed(rate, 8000) if rate != 8000 else 0)
    chunk = 160  # samples in 20 ms at 8 kHz
    # Every sample sent, then silence up to a whole chunk.
    assert len(audio) == 2 * chunk * math.ceil(samples / chunk), (len(audio), 2 * samples)
    sent = np.frombuffer(tone(seconds, 8000), "<i2").astype(float)
    got = np.frombuffer(audio, "<i2").astype(float)
    assert np.abs(got[int(samples) + 5 :]).max(initial=0) < 200  # the padding is silence
    if name == "exotel" and rate == 8000:
        assert audio[: len(sent) * 2] == tone(seconds, 8000)  # PCM, no resampling: exact
    stop = {"twilio": "stop", "telnyx": "stop", "exotel": "stop"}.get(name)
    if stop:
        assert events[-1] == stop  # the hang-up comes after the audio
        assert stop not in events[:-1]


@carriers
async def test_inbound_resampler_tail_reaches_the_pipeline_when_the_bot_goes_quiet(name: str):
    """0.5 s of the bot's audio at 8 kHz, then nothing: all of it reaches the 16 kHz pipeline."""
    serializer = CARRIERS[name]()
    seconds = 0.5
    bot = tone(seconds, 8000)
    async with record_server(send_on_connect=bot_media(name, bot)) as server:
        transport = make_transport(server.uri, serializer=serializer)
        async with run_pipeline(transport, rate=16000) as p:
            # Played in real time: 0.5 s, then the tail after a quiet 60 ms.
            await wait_for(lambda: len(p.collector.audio()) >= 16000 * seconds, 3)
            await asyncio.sleep(seconds + 0.3)
            heard = len(p.collector.audio())
            await p.end()
    assert not p.errors
    # Every sample, after the filter's delay of silence, within a sample or two.
    assert abs(heard - 2 * 16000 * seconds - 2 * primed(8000, 16000)) <= 8, heard
