"""The playback clock in real time: a bot speaking without a pause is heard on time.

A Twilio-protocol bot (a ``websockets`` server on 127.0.0.1, its messages
made by Pipecat's own ``TwilioFrameSerializer``) sends 20 ms media messages
on an absolute schedule, then a mark. Our transport plays Twilio toward it
(``TwilioCarrierSerializer``) in a real Pipecat pipeline at 8 kHz (no
resampling) and 16 kHz (our resampler in the way). The audio must reach the
pipeline at the rate it plays, and the mark come back once it has played.

The bot speaks for 20 s in CI and 60 s under ``HYPOTHESIS_PROFILE=long``;
the bounds are per second of audio, so both runs assert the same drift.
Measured here before issue 24's fix (each chunk started at the tick that
released it): 70-88 ms/s late at 8 kHz, 27-84 at 16 kHz, the mark echoed
4.9 s late after a minute; after it, 0.003-0.04 ms/s, and every frame within
about a tick of its schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)
from pipecat.serializers.twilio import TwilioFrameSerializer
from websockets.asyncio.server import ServerConnection, serve

import budget
from harness import make_transport, run_pipeline, wait_for
from pipecat_wsclient.protocols import TwilioCarrierSerializer
from pipecat_wsclient.protocols.carrier import TICK_SECS

pytestmark = pytest.mark.slow  # a bot speaking for 20 s in real time

BOT_SECS = 60.0 if budget.PROFILE == "long" else 20.0
"""How long the bot speaks without a pause."""
PTIME_SECS = 0.02
"""The bot's media messages: 20 ms each, as Pipecat's output transport sends them."""
BOT_RATE = 8000
MARK = "spoken"
MAX_DRIFT_MS_PER_SEC = 2.0
"""How far the audio may fall behind (or run ahead of) real time, per second of it."""
SLACK_SECS = 0.1
"""On top of the drift: one late tick of the event loop on a busy CI machine."""


@dataclass
class SpeakingBot:
    """What the bot did and saw, on ``time.monotonic()``."""

    uri: str = ""
    first_sent_at: float | None = None
    sent_secs: float = 0.0
    mark_echoed_at: float | None = None
    echoes: list[dict] = field(default_factory=list)


def tone(seconds: float, rate: int) -> bytes:
    """A 440 Hz tone, 16-bit PCM (audible: nothing along the way drops it as silence)."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype("<i2").tobytes()


@contextlib.asynccontextmanager
async def speaking_bot(seconds: float) -> AsyncIterator[SpeakingBot]:
    """A Twilio phone bot that speaks ``seconds`` without a pause, then sends a mark."""
    bot = SpeakingBot()

    async def handler(ws: ServerConnection) -> None:
        stream_sid = ""
        while not stream_sid:  # connected, then start
            message = json.loads(await ws.recv())
            stream_sid = message.get("start", {}).get("streamSid", "")
        serializer = TwilioFrameSerializer(
            stream_sid, params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
        )
        chunk = tone(PTIME_SECS, BOT_RATE)

        async def listen() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("event") == "mark":
                    bot.echoes.append(message)
                    if message["mark"]["name"] == MARK and bot.mark_echoed_at is None:
                        bot.mark_echoed_at = time.monotonic()

        listener = asyncio.create_task(listen())
        start = time.monotonic()
        bot.first_sent_at = start
        for k in range(round(seconds / PTIME_SECS)):
            # Absolute schedule: message k goes out at start + k * 20 ms.
            await asyncio.sleep(max(0.0, start + k * PTIME_SECS - time.monotonic()))
            await ws.send(await serializer.serialize(OutputAudioRawFrame(chunk, BOT_RATE, 1)))
            bot.sent_secs += PTIME_SECS
        mark = {"event": "mark", "streamSid": stream_sid, "mark": {"name": MARK}}
        await ws.send(await serializer.serialize(OutputTransportMessageFrame(message=mark)))
        with contextlib.suppress(Exception):
            await listener

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        bot.uri = f"ws://127.0.0.1:{port}/ws"
        yield bot


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_continuous_bot_audio_reaches_the_pipeline_in_real_time(rate: int):
    async with speaking_bot(BOT_SECS) as bot:
        serializer = TwilioCarrierSerializer()
        # What our resampler holds at the end stays there until the call ends:
        # every frame the pipeline gets came before the mark.
        serializer.input_flush_secs = 3600.0
        transport = make_transport(bot.uri, serializer=serializer)
        async with run_pipeline(transport, rate=rate) as p:
            await wait_for(lambda: bot.mark_echoed_at is not None, BOT_SECS + 30)
            frames = [(at, f) for at, f in p.collector.frames if isinstance(f, InputAudioRawFrame)]
            await p.end()
    assert not p.errors
    assert bot.first_sent_at is not None and bot.mark_echoed_at is not None

    # Each frame reaches the pipeline when its audio starts to play: at the first
    # frame's time plus the audio before it (the schedule), within a wake-up.
    first_at = frames[0][0]
    bytes_per_sec = 2 * rate
    before = 0
    scheduled, lags = [], []
    for at, frame in frames:
        scheduled.append(before / bytes_per_sec)
        lags.append(at - (first_at + scheduled[-1]))
        before += len(frame.audio)  # type: ignore[attr-defined]
    heard_secs = before / bytes_per_sec
    # The drift: how fast the lag grows (its least-squares slope), for the record;
    # the bounds below are the promise.
    drift = 1000 * statistics.linear_regression(scheduled, lags).slope
    # Silence the carrier played when the bot's audio genuinely ran dry (a stall
    # on a busy machine): the audio after it is that much later, and rightly so.
    gaps = serializer.playback.gap_secs
    # The mark comes back once that audio has played: first_at + heard_secs, or
    # a wake-up before it (the first frame may have been handed over that late).
    echo_lag = bot.mark_echoed_at - (first_at + heard_secs)
    # At 8 kHz nothing holds audio back: the audio cannot have played before
    # the bot's last message was sent.
    bot_echo_lag = bot.mark_echoed_at - (bot.first_sent_at + bot.sent_secs)
    print(
        f"\n{rate} Hz: {heard_secs:.2f} s heard; drift {drift:+.3f} ms/s; last frame"
        f" {1000 * lags[-1]:+.1f} ms off its schedule, latest"
        f" {1000 * max(lags):+.1f} ms, earliest {1000 * min(lags):+.1f} ms;"
        f" {serializer.playback.underruns} underruns ({1000 * gaps:.1f} ms); mark echoed"
        f" {1000 * echo_lag:+.1f} ms after the audio's end ({1000 * bot_echo_lag:+.1f} ms"
        " after the bot's)"
    )
    assert heard_secs >= 0.98 * bot.sent_secs  # the resampler holds some back
    # No frame later than the drift allowed, plus a late wake-up, plus the
    # silence of genuine underruns: none unless the machine stalled, and not
    # a restart at every chunk (the drift again, under another name).
    assert serializer.playback.underruns <= 1 + heard_secs / 10
    bound = MAX_DRIFT_MS_PER_SEC / 1000 * heard_secs + SLACK_SECS + gaps
    assert -TICK_SECS - SLACK_SECS <= min(lags) and max(lags) <= bound, (min(lags), max(lags))
    assert -TICK_SECS - SLACK_SECS <= echo_lag <= bound, echo_lag
    if rate == 8000:
        assert 0 <= bot_echo_lag <= bound, bot_echo_lag
