"""The output's media sender (``LeanMediaSender``) keeps Pipecat's behaviour.

It replaces the base class's per-chunk ``wait_for`` tasks; these tests check
what users rely on from ``BaseOutputTransport``: bot speaking frames, the
``audio_out_write_timeout_secs`` bound, named destinations, chunks pushed
downstream after they are written (gathered into fewer, longer frames).
"""

import asyncio
import time

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.workers.runner import WorkerRunner

from harness import RATE, Collector, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.sender import CountingMediaSender, InterruptionCounter, LeanMediaSender
from support.servers import record_server, stop_reading_server


class Upstream(FrameProcessor):
    """Keep frames that travel upstream past this point."""

    def __init__(self):
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


async def received_audio(server) -> bytes:
    s = ProtobufFrameSerializer()
    frames = [await s.deserialize(m) for m in server.messages]
    return b"".join(f.audio for f in frames if isinstance(f, InputAudioRawFrame))


async def test_bot_speaking_frames_and_chunks_pushed_downstream():
    """Started/stopped speaking go up; the written audio goes on downstream, in order."""
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        upstream = Upstream()
        after = Collector((OutputAudioRawFrame,))
        audio = pcm(0.5)
        worker = PipelineWorker(
            Pipeline([upstream, t.output(), after]),
            params=PipelineParams(audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        await worker.queue_frames([TTSAudioRawFrame(audio, RATE, 1), TTSStoppedFrame(), EndFrame()])
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.wait_for(runner.run(), 20)
        sent = await received_audio(server)
    kinds = [
        type(f)
        for f in upstream.frames
        if isinstance(f, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame))
    ]
    assert kinds == [BotStartedSpeakingFrame, BotStoppedSpeakingFrame]
    # TTSStoppedFrame flushes the last partial chunk, padded with silence.
    chunk = t.output().audio_chunk_size
    assert len(sent) == -(-len(audio) // chunk) * chunk
    assert sent[: len(audio)] == audio and not any(sent[len(audio) :])
    chunks = [f for _, f in after.frames]
    assert b"".join(f.audio for f in chunks) == sent
    # Gathered by audio_out_downstream_secs (0.1 s: three 40 ms chunks), the
    # frame type kept; the last one holds what was left when the queue ran dry.
    assert all(type(f) is TTSAudioRawFrame for f in chunks)
    sizes = [len(f.audio) for f in chunks]
    assert all(n == 3 * chunk for n in sizes[:-1]) and 0 < sizes[-1] <= 3 * chunk
    assert isinstance(t.output()._media_senders[None], LeanMediaSender)


@pytest.mark.slow
async def test_write_bound_of_the_base_class_still_applies():
    """A peer that stops reading, our write timeout off: audio_out_write_timeout_secs ends it."""
    async with stop_reading_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(write_timeout=None, reconnect=None, audio_out_write_timeout_secs=1.0),
        )
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            start = time.monotonic()
            # Far more than the socket buffers hold.
            await p.send(TTSAudioRawFrame(pcm(30.0), RATE, 1))
            await wait_for(lambda: any("stopped reading" in e.error for e in p.errors), 20)
            took = time.monotonic() - start
        # As with the base class: the output is no longer usable, the pipeline ends.
        await p.wait(10)
    error = next(e for e in p.errors if "stopped reading" in e.error)
    assert "timed out after 1.0s" in error.error
    assert took < 15


async def test_named_destinations_get_a_sender_each():
    async with record_server() as server:
        t = WebsocketClientTransport(
            server.uri, client_params(audio_out_destinations=["left", "right"])
        )
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            senders = t.output()._media_senders
            assert sorted(senders, key=str) == sorted([None, "left", "right"], key=str)
            assert all(isinstance(s, LeanMediaSender) for s in senders.values())
            await p.end()


async def test_end_silence_longer_than_the_base_bound_is_sent_whole():
    """Our write_timeout bounds each send, so a paced end silence is not cut at the base bound."""
    async with record_server() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(audio_out_end_silence_secs=2, audio_out_write_timeout_secs=0.5),
        )
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            took = await p.end(timeout=15)
        sent = await received_audio(server)
    assert p.errors == []
    assert len(sent) == 2 * RATE * 2 and not any(sent)
    # Paced in real time (less the send lead), not dumped at once.
    assert 1.5 < took < 6


async def test_last_partial_chunk_is_sent_on_end():
    """Audio that does not fill the last chunk still goes out on EndFrame (padded)."""
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        audio = pcm(0.51)
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await p.end()
        sent = await received_audio(server)
    chunk = t.output().audio_chunk_size
    assert len(audio) % chunk != 0
    assert len(sent) == -(-len(audio) // chunk) * chunk
    assert sent[: len(audio)] == audio and not any(sent[len(audio) :])


async def test_falls_back_to_the_base_sender_when_pipecat_changed(monkeypatch):
    """If Pipecat's sender is not what LeanMediaSender builds on, the base sender is used.

    (tests/core/test_upstream.py runs a whole call through this fallback.)
    """
    from pipecat_wsclient import upstream

    monkeypatch.setattr(upstream, "fits", lambda part: part != "sender")
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        audio = pcm(0.4)
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: sum(len(m) for m in server.messages) >= len(audio), 10)
            sender = t.output()._media_senders[None]
            await p.end()
        sent = await received_audio(server)
    # The base class's sender as it is, only counting what interruptions discard.
    assert type(sender) is CountingMediaSender
    assert not isinstance(sender, LeanMediaSender)
    methods = {
        name
        for cls in (CountingMediaSender, InterruptionCounter)
        for name, value in vars(cls).items()
        if callable(value)
    }
    assert methods == {"handle_interruptions"}
    assert sent == audio


async def test_partial_chunk_left_when_the_queue_runs_dry_goes_out_when_due():
    """No TTSStoppedFrame (raw audio, an echo): the last partial chunk is not held.

    Pipecat's sender keeps it until more audio comes (then it plays at the
    start of the next utterance) and drops it, uncounted, after 3 s of
    silence. Ours sends it, padded, once the far end has played the rest.
    """
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        first, second = pcm(0.51), pcm(0.27)[::-1]
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            chunk = t.output().audio_chunk_size
            await p.send(TTSAudioRawFrame(first, RATE, 1))
            padded = -(-len(first) // chunk) * chunk
            start = time.monotonic()
            await wait_for(lambda: sum(len(m) for m in server.messages) >= padded, 10)
            took = time.monotonic() - start
            await asyncio.sleep(0.3)
            await p.send(TTSAudioRawFrame(second, RATE, 1))
            await p.end()
        sent = await received_audio(server)
    pad1 = padded - len(first)
    assert sent[: len(first)] == first and not any(sent[len(first) : padded])
    assert pad1 > 0
    # The second utterance starts on a chunk of its own, then its remainder
    # goes out at EndFrame (still playing: not stale).
    assert sent[padded : padded + len(second)] == second
    assert not any(sent[padded + len(second) :])
    assert t.stats.dropped_audio_secs == 0
    # Due when the far end has played 0.48 s (+ the 0.1 s lead it got early).
    assert took < 1.5


async def test_stale_tail_is_counted_not_sent_late():
    """A tail chunk queued at EndFrame after the far end ran dry is counted, not sent."""
    from pipecat.transports.base_transport import TransportParams

    from pipecat_wsclient.sender import TAIL_KEY

    t = WebsocketClientTransport("ws://127.0.0.1:9/ws", client_params())
    dropped: list[int] = []
    sender = LeanMediaSender(
        t.output(),
        destination=None,
        sample_rate=RATE,
        audio_chunk_size=1280,
        params=TransportParams(audio_out_enabled=True),
        until_dry=lambda: 0.0,
        on_stale_tail=dropped.append,
    )
    tail = TTSAudioRawFrame(bytes(1280), RATE, 1)
    tail.metadata[TAIL_KEY] = 300
    assert await sender._internal_write_audio_frame(tail) is False
    assert dropped == [300]


class Timeline(FrameProcessor):
    """After the output: the order of audio and other frames going downstream."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[float, str, int]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            size = len(frame.audio) if isinstance(frame, OutputAudioRawFrame) else 0
            self.events.append((time.monotonic(), type(frame).__name__, size))
        await self.push_frame(frame, direction)


async def run_output(server, params, frames, *, gap: float = 0.0) -> tuple[Timeline, bytes]:
    t = WebsocketClientTransport(server.uri, params)
    timeline = Timeline()
    worker = PipelineWorker(
        Pipeline([t.output(), timeline]),
        params=PipelineParams(audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    await wait_for(lambda: t.session.is_connected, 5)
    for frame in frames:
        await worker.queue_frame(frame)
        await asyncio.sleep(gap)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 20)
    return timeline, await received_audio(server)


async def test_gathered_audio_keeps_its_place_among_other_frames():
    """Audio, then a frame that is not audio, then audio: pushed in that order, nothing held."""
    from pipecat.frames.frames import TextFrame

    async with record_server() as server:
        first, second = pcm(0.4), pcm(0.2)[::-1]
        timeline, sent = await run_output(
            server,
            client_params(audio_out_downstream_secs=1.0),
            [
                TTSAudioRawFrame(first, RATE, 1),
                TextFrame("between"),
                TTSAudioRawFrame(second, RATE, 1),
            ],
        )
    kinds = [k for _, k, _ in timeline.events if k in ("TTSAudioRawFrame", "TextFrame")]
    # One frame per run of audio (1 s would hold both), split by the text frame.
    assert kinds == ["TTSAudioRawFrame", "TextFrame", "TTSAudioRawFrame"]
    sizes = [n for _, k, n in timeline.events if n]
    assert sizes == [len(first), len(second)]
    assert sent == first + second


async def test_nothing_is_held_once_the_queue_runs_dry():
    """A short reply goes downstream when it has been written, not with the next one."""
    async with record_server() as server:
        t0 = time.monotonic()
        timeline, _ = await run_output(
            server,
            client_params(audio_out_downstream_secs=5.0),
            [TTSAudioRawFrame(pcm(0.2), RATE, 1), TTSAudioRawFrame(pcm(0.2), RATE, 1)],
            gap=1.0,
        )
    audio = [(at - t0, n) for at, _, n in timeline.events if n]
    assert [n for _, n in audio] == [len(pcm(0.2))] * 2
    # The first reply reached downstream long before the second was queued (1 s later).
    assert audio[0][0] < audio[1][0] - 0.5


async def test_zero_pushes_every_chunk_as_pipecat_does():
    async with record_server() as server:
        audio = pcm(0.4)
        timeline, sent = await run_output(
            server, client_params(audio_out_downstream_secs=0), [TTSAudioRawFrame(audio, RATE, 1)]
        )
    sizes = [n for _, _, n in timeline.events if n]
    assert sizes == [1280] * 10
    assert sent == audio


async def test_audio_played_before_an_interruption_goes_downstream_before_it():
    from pipecat.frames.frames import InterruptionFrame

    async with record_server() as server:
        timeline, sent = await run_output(
            server,
            client_params(audio_out_downstream_secs=5.0),
            [TTSAudioRawFrame(pcm(2.0), RATE, 1), InterruptionFrame()],
            gap=0.6,
        )
    kinds = [
        (k, n) for _, k, n in timeline.events if k in ("TTSAudioRawFrame", "InterruptionFrame")
    ]
    # Everything written before the interruption, in one frame (5 s would
    # hold it all), pushed ahead of the InterruptionFrame; nothing after it.
    assert [k for k, _ in kinds] == ["TTSAudioRawFrame", "InterruptionFrame"]
    assert 0 < kinds[0][1] == len(sent) < len(pcm(2.0))


async def test_gathered_audio_carries_each_chunks_send_time():
    """SENT_KEY: one (time written, bytes) per chunk, matching what the server received when."""
    from pipecat_wsclient.sender import SENT_KEY

    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        after = Collector((OutputAudioRawFrame,))
        audio = pcm(1.0)
        worker = PipelineWorker(
            Pipeline([t.output(), after]),
            params=PipelineParams(audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        await worker.queue_frames([TTSAudioRawFrame(audio, RATE, 1), TTSStoppedFrame(), EndFrame()])
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.wait_for(runner.run(), 20)
        arrivals = [at for at, _ in server.received]
    frames = [f for _, f in after.frames]
    assert len(frames) < len(arrivals)  # gathered
    sent = [entry for f in frames for entry in f.metadata[SENT_KEY]]
    # Each frame's entries cover exactly its bytes.
    for f in frames:
        assert sum(n for _, n in f.metadata[SENT_KEY]) == len(f.audio)
    # One entry per chunk the server received, each written just before it arrived.
    chunk = t.output().audio_chunk_size
    assert [n for _, n in sent] == [chunk] * len(arrivals)
    for (written, _), arrived in zip(sent, arrivals, strict=True):
        assert 0 <= arrived - written < 0.05, (written, arrived)
    # Paced: the last chunk went out about 1 s (minus the lead) after the first.
    assert 0.7 < sent[-1][0] - sent[0][0] < 1.2
