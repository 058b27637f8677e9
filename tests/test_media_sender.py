"""The output's media sender (``LeanMediaSender``) keeps Pipecat's behaviour.

It replaces the base class's per-chunk ``wait_for`` tasks; these tests check
what users rely on from ``BaseOutputTransport``: bot speaking frames, the
``audio_out_write_timeout_secs`` bound, named destinations, chunks pushed
downstream after they are written.
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
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.workers.runner import WorkerRunner

from harness import RATE, Collector, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.sender import LeanMediaSender
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
    """Started/stopped speaking go up; every written chunk goes on downstream, in order."""
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
    assert {len(f.audio) for f in chunks} == {chunk}
    assert isinstance(t.output()._media_senders[None], LeanMediaSender)


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
    """If Pipecat's sender lacks what LeanMediaSender builds on, the base sender is used."""
    import pipecat_wsclient.transport as transport_module

    monkeypatch.setattr(transport_module, "LEAN_SENDER_FITS", False)
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
    assert type(sender) is BaseOutputTransport.MediaSender
    assert sent == audio


async def test_stale_tail_is_counted_not_played_late():
    """A partial chunk left over long before EndFrame is dropped and counted, not sent late."""
    async with record_server() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        audio = pcm(0.51)
        async with run_pipeline(t, with_input=False) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            chunk = t.output().audio_chunk_size
            whole = len(audio) // chunk * chunk
            await wait_for(lambda: sum(len(m) for m in server.messages) >= whole, 10)
            await asyncio.sleep(1.0)  # the far end has played it all
            await p.end()
        sent = await received_audio(server)
    assert sent == audio[:whole]
    tail_secs = (len(audio) - whole) / (2 * RATE)
    assert t.stats.dropped_audio_secs == pytest.approx(tail_secs)
