"""Outbound audio against real servers: pacing, interruption, end and cancel, stalled peers."""

import asyncio
import time

import pytest
from pipecat.frames.frames import (
    CancelFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputTransportMessageUrgentFrame,
    TTSAudioRawFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import FailureKind, WebsocketClientTransport
from support.servers import echo_server, record_server, stop_reading_server


async def decode_all(messages) -> list:
    s = ProtobufFrameSerializer()
    return [await s.deserialize(m) for m in messages]


async def audio_arrivals(server) -> list[tuple[float, bytes]]:
    frames = await decode_all(server.messages)
    return [
        (t, f.audio)
        for (t, _), f in zip(server.received, frames, strict=True)
        if isinstance(f, InputAudioRawFrame)
    ]


async def stream_and_measure(seconds: float, rate: int, channels: int, lead: float):
    async with record_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(
                audio_out_sample_rate=rate,
                audio_out_channels=channels,
                audio_out_send_lead_secs=lead,
            ),
        )
        audio = pcm(seconds, rate=rate, channels=channels)
        async with run_pipeline(t, rate=rate) as p:
            await p.send(TTSAudioRawFrame(audio, rate, channels))
            await wait_for(lambda: sum(len(m) for m in server.messages) >= len(audio), seconds + 10)
            await p.end()
        arrivals = await audio_arrivals(server)
    assert b"".join(a for _, a in arrivals) == audio
    return arrivals


def pacing_figures(arrivals, rate, channels, lead):
    bps = 2 * rate * channels
    chunk = len(arrivals[0][1]) / bps
    total = sum(len(a) for _, a in arrivals) / bps
    elapsed = arrivals[-1][0] - arrivals[0][0]
    # The last chunk is due (total - chunk - lead) after the first one.
    drift = elapsed - (total - chunk - lead)
    # Steady-state rate: skip the chunks sent at once as the lead.
    k0 = int(lead / chunk) + 1
    steady_audio = sum(len(a) for _, a in arrivals[k0:-1]) / bps
    steady_rate = steady_audio / (arrivals[-1][0] - arrivals[k0][0])
    gaps = [b[0] - a[0] for a, b in zip(arrivals[k0:], arrivals[k0 + 1 :], strict=False)]
    return chunk, steady_rate, drift, sorted(gaps)[int(0.99 * (len(gaps) - 1))]


@pytest.mark.slow
async def test_pacing_is_real_time_without_drift():
    lead = 0.1
    arrivals = await stream_and_measure(12.0, RATE, 1, lead)
    chunk, rate, drift, p99_gap = pacing_figures(arrivals, RATE, 1, lead)
    assert chunk == pytest.approx(0.04)  # audio_out_10ms_chunks=4
    assert rate == pytest.approx(1.0, abs=0.01)
    assert abs(drift) < 0.05
    assert p99_gap < chunk + 0.02
    # Never more than the lead ahead of real time.
    start = arrivals[0][0]
    sent = 0.0
    for t, a in arrivals:
        assert sent - (t - start) <= lead + 0.01
        sent += len(a) / (2 * RATE)


async def test_pacing_accounts_for_sample_rate_and_channels():
    lead = 0.0
    arrivals = await stream_and_measure(2.0, 48000, 2, lead)
    chunk, rate, drift, _ = pacing_figures(arrivals, 48000, 2, lead)
    assert chunk == pytest.approx(0.04)
    assert len(arrivals[0][1]) == 48000 * 2 * 2 * 4 // 100
    assert rate == pytest.approx(1.0, abs=0.03)
    assert abs(drift) < 0.05


async def test_interruption_reaches_far_end_and_stops_old_audio():
    a = pcm(3.0, seed=1)
    b = pcm(0.48, seed=2)  # whole 40 ms chunks: a partial one waits for more audio
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(a, RATE, 1))
            await asyncio.sleep(1.0)
            await p.worker.queue_frame(InterruptionFrame())
            await asyncio.sleep(0.3)
            await p.send(TTSAudioRawFrame(b, RATE, 1))
            await wait_for(lambda: t.stats.audio_secs_sent >= 1.0 + 0.48 - 0.01, 10)
            await asyncio.sleep(0.3)
            await p.end()
        frames = await decode_all(server.messages)
    kinds = [type(f).__name__ for f in frames]
    assert kinds.count("InterruptionFrame") == 1
    cut = kinds.index("InterruptionFrame")
    before = [f.audio for f in frames[:cut] if isinstance(f, InputAudioRawFrame)]
    after = [f.audio for f in frames[cut + 1 :] if isinstance(f, InputAudioRawFrame)]
    # Nothing of the interrupted utterance after the clear, all of the new one.
    assert all(chunk in a for chunk in before)
    assert not any(chunk in a for chunk in after)
    assert b"".join(after) == b
    # About 1 s (+ lead) of the 3 s utterance went out before the interruption.
    assert 0.8 <= sum(map(len, before)) / (2 * RATE) <= 1.4
    assert t.stats.interrupted_audio_secs < 2.5  # counted, not "dropped"
    assert t.stats.dropped_frames == 0


async def test_end_frame_sends_end_silence_then_closes_1000():
    audio = pcm(0.48)  # whole chunks: Pipecat's sender keeps a partial one for more audio
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params(audio_out_end_silence_secs=1))
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: server.messages, 5)
            took = await p.end()
        assert server.close_codes == [1000]
        arrivals = await audio_arrivals(server)
    sent = b"".join(a for _, a in arrivals)
    assert sent[: len(audio)] == audio
    silence = sent[len(audio) :]
    assert len(silence) == 1 * RATE * 2 and not any(silence)
    # The end silence is paced too: ~1 s, not a burst.
    assert 0.7 < took < 3.0


async def test_cancel_closes_within_one_second():
    async with echo_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await p.send(TTSAudioRawFrame(pcm(5.0), RATE, 1))
            await wait_for(lambda: len(server.messages) > 5, 5)
            start = time.monotonic()
            await p.worker.queue_frame(CancelFrame())
            await wait_for(lambda: server.close_codes, 2)
            closed_after = time.monotonic() - start
            await p.wait(2)
    assert closed_after < 1.0
    assert server.connections == 1


async def test_stalled_peer_does_not_wedge_end():
    """A peer that stops reading, reconnection off: the write timeout ends the call loudly."""
    async with stop_reading_server() as server:
        t = WebsocketClientTransport(server.uri, client_params(write_timeout=1.0, reconnect=None))
        errors = []

        @t.event_handler("on_connection_error")
        async def on_error(_t, error):
            errors.append(error)

        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            big = {"blob": "x" * 1_000_000}
            start = time.monotonic()
            for _ in range(40):
                await p.worker.queue_frame(OutputTransportMessageUrgentFrame(message=big))
            await p.worker.queue_frame(TTSAudioRawFrame(pcm(1.0), RATE, 1))
            await p.wait(15)
            took = time.monotonic() - start
    assert took < 10
    assert [e.kind for e in errors] == [FailureKind.WRITE_TIMEOUT]
    assert any("stopped reading" in e.error for e in p.errors)
    assert p.errors[0].fatal


async def test_cancel_with_stalled_peer_ends_within_one_second():
    """Audio blocked in a send to a peer that stopped reading does not hold up a cancel."""
    rate, channels = 48000, 2
    async with stop_reading_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(
                audio_out_sample_rate=rate,
                audio_out_channels=channels,
                audio_out_10ms_chunks=100,  # 1 s chunks
                audio_out_send_lead_secs=1000,  # no pacing: fill the socket buffers fast
                write_timeout=30,
            ),
        )
        async with run_pipeline(t, rate=rate) as p:
            await p.send(TTSAudioRawFrame(bytes(60 * rate * channels * 2), rate, channels))
            # Wait until sends are stuck: audio stops advancing.
            await wait_for(lambda: t.stats.audio_secs_sent > 2, 10)
            last = -1.0
            while t.stats.audio_secs_sent != last:
                last = t.stats.audio_secs_sent
                await asyncio.sleep(0.3)
            assert last < 60  # the peer really stalled us
            start = time.monotonic()
            await p.worker.queue_frame(CancelFrame())
            await p.wait(5)
            took = time.monotonic() - start
    assert took < 1.0
