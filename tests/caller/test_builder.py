"""One caller builder (caller/builder.py): one set of defaults, and named differences.

Every front end builds its caller here; what one needs differently is a named
parameter. These tests pin each default and each parameter to the transport
setting it stands for, and the listener's rule that the bot's interruption
never reaches the caller's own speech.
"""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import (
    EndFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient.caller.builder import Caller, LineOptions, line_rate
from pipecat_wsclient.caller.taps import Listener, SentTap
from pipecat_wsclient.protocols.registry import make_serializer
from pipecat_wsclient.sender import SENT_KEY
from support.servers import refused_uri


def build(**kwargs) -> Caller:
    line = kwargs.pop("line", LineOptions("ws://127.0.0.1:9/ws"))
    return Caller(line, on_heard=lambda at, pcm: None, on_sent=lambda at, pcm: None, **kwargs)


def test_defaults_are_one_set():
    caller = build()
    params = caller.transport._params
    assert caller.rate == 16000
    assert params.add_wav_header is False
    assert params.audio_out_end_silence_secs == 0
    assert params.audio_out_downstream_secs == 0.1
    assert params.audio_out_10ms_chunks == 2  # a carrier's 20 ms frame
    assert params.reconnect is None  # a carrier never redials
    assert params.audio_in_enabled and params.audio_out_enabled


@pytest.mark.parametrize(
    ("protocol", "rate"), [("twilio", 8000), ("telnyx", 8000), ("vonage", 16000), ("raw", 16000)]
)
def test_no_rate_given_is_the_carriers_own(protocol, rate):
    caller = build(line=LineOptions("ws://127.0.0.1:9/ws", protocol=protocol))
    assert caller.rate == rate
    assert line_rate(make_serializer(protocol, 16000)) == rate


def test_named_differences_set_what_they_say():
    caller = build(
        line=LineOptions("ws://127.0.0.1:9/ws", reconnect=True),
        live_sent_audio=True,
        out_chunk_secs=0.04,
    )
    params = caller.transport._params
    assert params.reconnect is not None
    assert params.audio_out_downstream_secs == 0
    assert params.audio_out_10ms_chunks == 4


def test_a_wrong_protocol_fails_before_anything_is_dialed():
    with pytest.raises(ValueError, match="nope"):
        build(line=LineOptions("ws://127.0.0.1:9/ws", protocol="nope"))


class _Collect(FrameProcessor):
    def __init__(self):
        super().__init__()
        self.frames = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        await self.push_frame(frame, direction)


async def run_frames(processor, frames):
    collect = _Collect()
    worker = PipelineWorker(
        Pipeline([processor, collect]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    await worker.queue_frames([*frames, EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), 10)
    return collect.frames


async def test_listener_keeps_the_bots_audio_and_interruptions_from_the_caller():
    heard, interruptions = [], []
    listener = Listener(lambda at, pcm: heard.append(pcm), interruptions.append)
    passed = await run_frames(
        listener,
        [
            InputAudioRawFrame(b"\x01\x00" * 160, 8000, 1),
            InterruptionFrame(),
            TextFrame("on"),
        ],
    )
    assert heard == [b"\x01\x00" * 160]
    assert len(interruptions) == 1
    kinds = [type(f) for f in passed]
    assert InputAudioRawFrame not in kinds and InterruptionFrame not in kinds
    assert TextFrame in kinds


async def test_sent_tap_hands_each_gathered_chunk_with_its_send_time():
    sent = []
    frame = OutputAudioRawFrame(b"a" * 320 + b"b" * 320, 8000, 1)
    frame.metadata[SENT_KEY] = [(1.0, 320), (1.02, 320)]
    await run_frames(SentTap(lambda at, pcm: sent.append((at, pcm))), [frame])
    assert sent == [(1.0, b"a" * 320), (1.02, b"b" * 320)]


async def test_a_refused_call_is_reported_once_and_ends():
    states = []
    caller = Caller(
        LineOptions(refused_uri(), open_timeout=2),
        on_heard=lambda at, pcm: None,
        on_sent=lambda at, pcm: None,
        on_state=lambda state, detail: states.append(state),
    )
    run = await caller.start()
    await asyncio.wait_for(caller.connected_or_failed(), 10)
    assert caller.failed.is_set() and not caller.connected.is_set()
    assert len(caller.failures) == 1 and states == ["failed"]
    await caller.hang_up(5)
    assert run.done() and caller.ended
