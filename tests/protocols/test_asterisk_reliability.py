"""Asterisk: nothing stalls, goes silent or is lost uncounted (issue 12).

What a real Asterisk (23.4.1, chan_websocket) showed, replayed against the
fake channel driver (which now behaves as the real one: no media while the
caller is silent, our close answered with 1001, more channel variables), and
the counting gaps of the serializer.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pipecat.frames.frames import (
    EndFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from test_asterisk import FORMATS, FakeIO, media_start, sent_payload, started

from harness import RATE, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.audio.resample import StreamResampler
from pipecat_wsclient.protocols.asterisk import AsteriskSerializer, asterisk_params
from pipecat_wsclient.protocols.asterisk.stats import MAX_ERRORS
from support.fake_asterisk import FakeAsterisk, encode, tone


def transport_for(fake: FakeAsterisk, serializer: AsteriskSerializer, **overrides):
    params = asterisk_params(serializer, audio_out_end_silence_secs=0, **overrides)
    return WebsocketClientTransport(fake.uri, params)


def watch(transport: WebsocketClientTransport) -> dict[str, list]:
    seen: dict[str, list] = {"disconnected": [], "errors": []}

    @transport.event_handler("on_disconnected")
    async def on_disconnected(_t, ws):
        seen["disconnected"].append(ws.close_code)

    @transport.event_handler("on_connection_error")
    async def on_error(_t, error):
        seen["errors"].append(error)

    return seen


# -- the caller's audio: nothing held back when the caller goes silent -----------


@pytest.mark.parametrize("control", FORMATS)
async def test_caller_audio_held_by_the_resampler_arrives_when_the_caller_goes_silent(control):
    """0.5 s of 8 kHz caller audio, then nothing (as Asterisk does): all 0.5 s reach 16 kHz."""
    seconds = 0.5
    caller = encode(tone(seconds, 8000), "ulaw")
    async with FakeAsterisk(format="ulaw", control_format=control, caller_audio=caller) as fake:
        serializer = AsteriskSerializer()
        async with run_pipeline(transport_for(fake, serializer)) as p:
            await wait_for(lambda: len(p.collector.audio()) >= RATE * seconds, 5)
            await asyncio.sleep(seconds + 0.3)  # all sent, then three ptimes of silence
            heard = len(p.collector.audio())
    # Every sample, after the filter's delay of silence (34 samples at 8 kHz), a sample or two.
    pad = round((StreamResampler(8000, RATE, low_delay=True).delay_secs or 0) * RATE)
    assert abs(heard - 2 * RATE * seconds - 2 * pad) <= 8, heard


# -- a flush during XOFF, then the end of the call ----------------------------------


@pytest.mark.parametrize("control", FORMATS)
async def test_hang_up_after_a_barge_in_during_xoff_is_prompt(control):
    """Real Asterisk answers FLUSH_MEDIA during XOFF with MEDIA_XON; HANGUP took 10 s after."""
    async with FakeAsterisk(format="slin16", control_format=control) as fake:
        serializer = AsteriskSerializer()  # end_timeout_secs=10
        transport = transport_for(
            fake, serializer, audio_out_send_lead_secs=60, audio_out_10ms_chunks=10
        )
        async with run_pipeline(transport) as p:
            await wait_for(lambda: serializer.codec is not None, 10)
            await p.send(OutputAudioRawFrame(pcm(25.0, seed=3), RATE, 1))
            await wait_for(lambda: fake.event_times("MEDIA_XOFF"), 10)
            await wait_for(lambda: serializer.paused, 10)
            await p.send(InterruptionFrame())
            await wait_for(lambda: fake.commands_named("FLUSH_MEDIA"), 10)
            flushed_at = fake.commands_named("FLUSH_MEDIA")[0].t
            await wait_for(lambda: any(t > flushed_at for t in fake.event_times("MEDIA_XON")), 5)
            await wait_for(lambda: not serializer.paused, 5)
            assert serializer.queued_frames_estimate() < 5
            ended_at = time.monotonic()
            await p.send(EndFrame())
            await wait_for(lambda: fake.commands_named("HANGUP"), 15)
            hangup_after = fake.commands_named("HANGUP")[0].t - ended_at
            await asyncio.wait_for(p.task, 10)
        print(f"HANGUP {hangup_after:.3f}s after the EndFrame")
        assert hangup_after < 1.0, hangup_after
        assert fake.flushed_frames > 800
        assert fake.violations == []
        assert p.errors == []


# -- the caller hangs up; we close ---------------------------------------------------


@pytest.mark.parametrize("control", FORMATS)
async def test_caller_hangup_ends_the_pipeline_cleanly(control):
    """Asterisk closes with 1000 (no event first): the call ends, no error."""
    async with FakeAsterisk(format="ulaw", control_format=control) as fake:
        serializer = AsteriskSerializer()
        transport = transport_for(fake, serializer)
        seen = watch(transport)
        async with run_pipeline(transport) as p:
            await wait_for(lambda: serializer.codec is not None, 10)
            await p.send(OutputAudioRawFrame(pcm(0.2), RATE, 1))
            await wait_for(lambda: len(fake.media_in) >= 0.2 * 8000, 5)
            hung_up_at = time.monotonic()
            await fake.caller_hangup()
            await p.wait(5)
            took = time.monotonic() - hung_up_at
        print(f"pipeline ended {took:.3f}s after the caller hung up")
        assert took < 1.0, took
        assert p.errors == []
        assert seen["errors"] == []
        assert seen["disconnected"] == [1000]
        assert len(p.collector.of(EndFrame)) == 1  # ended, not cancelled
        assert fake.connections == 1  # not redialed


async def test_our_close_answered_with_1001_is_not_an_error():
    """Asterisk answers the app's close with 1001 (going away): still a clean end."""
    async with FakeAsterisk(format="ulaw", hangup_close_delay=5.0) as fake:
        serializer = AsteriskSerializer(end_timeout_secs=0)
        transport = transport_for(fake, serializer)
        seen = watch(transport)
        async with run_pipeline(transport) as p:
            await wait_for(lambda: serializer.codec is not None, 10)
            took = await p.end()
        await asyncio.wait_for(fake.closed.wait(), 5)
    assert took < 2
    assert fake.command_names() == ["HANGUP"]
    assert fake.close_codes == [1000]  # we closed first (Asterisk waits 5 s here)
    assert seen["disconnected"] == [1001]  # and Asterisk answered with 1001
    assert seen["errors"] == [] and p.errors == []


async def test_media_start_with_more_channel_variables_and_unknown_fields():
    async with FakeAsterisk(format="slin16", control_format="json") as fake:
        text = fake.format_event("MEDIA_START")
    obj = json.loads(text)
    obj["some_future_field"] = {"nested": [1, 2]}
    obj["channel_variables"]["NUMERIC"] = 5
    serializer = AsteriskSerializer()
    assert await serializer.deserialize(json.dumps(obj)) is None
    start = serializer.media_start
    assert start is not None and serializer.codec is not None
    assert (start.format, start.optimal_frame_size, start.ptime) == ("slin16", 640, 20)
    variables = start.channel_variables
    assert variables["MEDIA_WEBSOCKET_CONNECTION_ID"] == fake.connection_id
    assert variables["CALLERID_NUM"] == "+15550100001"
    assert variables["CDR_PROP_ID"] == "pipecat:test, with spaces"
    assert variables["NUMERIC"] == "5"  # typed as the strings Asterisk sends
    plain = await AsteriskSerializer().deserialize(
        "MEDIA_START connection_id:x channel:WebSocket/INCOMING/0x1 channel_id:1.1 "
        "format:ulaw optimal_frame_size:160 ptime:20 future_key:some value"
    )
    assert plain is None


# -- counting -------------------------------------------------------------------------


async def test_audio_held_during_xoff_is_not_counted_as_sent_by_the_serializer():
    async with started("slin16", "plain-text") as (serializer, io):
        first = pcm(0.2, seed=1)
        assert await sent_payload(serializer, OutputAudioRawFrame(first, RATE, 1)) == [first]
        await serializer.deserialize("MEDIA_XOFF")
        for seed in range(2, 7):
            await sent_payload(serializer, OutputAudioRawFrame(pcm(0.1, seed=seed), RATE, 1))
        stats = serializer.stats
        assert stats.audio_secs_sent == pytest.approx(0.2)  # 0.5 s held, not sent
        assert serializer.held_audio_secs == pytest.approx(0.5)
        await serializer.deserialize("MEDIA_XON")
        assert stats.audio_secs_sent == pytest.approx(0.7)
        assert stats.audio_secs_sent == pytest.approx(len(first + io.media()) / (2 * RATE))


@pytest.mark.slow
@pytest.mark.parametrize("control", FORMATS)
async def test_call_serializer_counts_what_asterisk_received(control):
    """Transport: handed to the serializer; serializer: sent; the difference is held."""
    async with FakeAsterisk(format="slin16", control_format=control) as fake:
        serializer = AsteriskSerializer()
        transport = transport_for(
            fake, serializer, audio_out_send_lead_secs=60, audio_out_10ms_chunks=10
        )
        async with run_pipeline(transport) as p:
            await wait_for(lambda: serializer.codec is not None, 10)
            audio = pcm(20.0, seed=7)
            await p.send(OutputAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: serializer.paused and serializer.held_audio_secs > 0.5, 10)
            handed = transport.stats.audio_secs_sent
            sent = serializer.stats.audio_secs_sent
            held = serializer.held_audio_secs
            assert handed - sent == pytest.approx(held, abs=0.1 + 1e-9)
            assert sent == pytest.approx(len(fake.media_in) / (2 * RATE), abs=0.1)
            await wait_for(lambda: len(fake.media_in) >= len(audio), 20)
        assert serializer.stats.audio_secs_sent == pytest.approx(20.0)
        assert bytes(fake.media_in) == audio


async def test_audio_before_media_start_is_bounded_oldest_dropped_and_counted():
    serializer = AsteriskSerializer(max_held_secs=1.0)
    io = FakeIO()
    await serializer.attach(io)
    try:
        frames = [pcm(0.1, seed=s) for s in range(30)]  # 3 s, no MEDIA_START yet
        for audio in frames:
            assert await serializer.serialize(OutputAudioRawFrame(audio, RATE, 1)) == []
        assert serializer.stats.pre_start_dropped == 20
        assert serializer.stats.dropped_audio_secs == pytest.approx(2.0)
        await serializer.deserialize(media_start("slin16", "plain-text"))
        await wait_for(lambda: len(io.media()) == 10 * len(frames[0]), 2)
        assert io.media() == b"".join(frames[20:])  # the newest second, in order
    finally:
        io.close()


async def test_an_interruption_before_media_start_counts_the_audio_it_drops():
    serializer = AsteriskSerializer()
    await serializer.serialize(OutputAudioRawFrame(pcm(0.3), RATE, 1))
    assert await serializer.serialize(InterruptionFrame()) is None
    assert serializer.stats.interrupted_audio_secs == pytest.approx(0.3)


async def test_error_texts_are_bounded():
    async with started("ulaw", "plain-text") as (serializer, _io):
        for i in range(MAX_ERRORS + 50):
            await serializer.deserialize(f"ERROR channel_id:1.1 error_text:oops {i}")
        assert len(serializer.stats.errors) == MAX_ERRORS
        assert serializer.stats.errors[-1] == f"oops {MAX_ERRORS + 49}"
        assert serializer.stats.events["ERROR"] == MAX_ERRORS + 50


async def test_status_with_an_absurd_xon_level_does_not_move_the_estimate():
    async with started("ulaw", "plain-text") as (serializer, _io):
        await serializer.deserialize("STATUS channel_id:1.1 queue_length:0 xon_level:100000")
        await serializer.deserialize("MEDIA_XOFF")
        await serializer.deserialize("MEDIA_XON")
        assert serializer.queued_frames_estimate() <= 800
