"""Received audio already waiting goes into the pipeline as one frame (issue 16).

The invariant of :func:`coalesce_audio`, tried by generated frame
sequences: the frames that are not joinable audio come out as they went in
(the same objects, in the same order); between two of them, the joinable
audio comes out as frames whose bytes, concatenated, are exactly the bytes
that went in, in order; a joined frame holds only audio of one sample rate,
channel count and source; audio that cannot be delivered (0 Hz, half a
sample) is never joined (two halves of a sample must not make a whole one),
and a run of one frame is that frame.

Then through a real connection: a client that is behind (its loop held
while the server sends) gets fewer, larger frames with every byte in order
and every message counted; a client that keeps up gets one frame per
message.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    OutputAudioRawFrame,
    TextFrame,
    UserAudioRawFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from budget import budget
from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.coalesce import audio_problem, coalesce_audio
from support.restartable import RestartableServer
from support.servers import record_server


def joinable(frame: Frame) -> bool:
    return (
        type(frame) is InputAudioRawFrame
        and not frame.metadata
        and bool(frame.audio)
        and audio_problem(frame) is None
    )


@st.composite
def frames(draw) -> Frame:
    kind = draw(st.sampled_from(["audio", "audio", "audio", "bad", "user", "text", "message"]))
    if kind in ("audio", "bad", "user"):
        rate = draw(st.sampled_from([8000, 16000] if kind != "bad" else [0, 16000]))
        channels = draw(st.sampled_from([1, 2]))
        samples = draw(st.integers(0, 8))
        extra = draw(st.integers(1, 3)) if kind == "bad" and rate else 0
        audio = draw(
            st.binary(
                min_size=2 * channels * samples + extra, max_size=2 * channels * samples + extra
            )
        )
        cls = UserAudioRawFrame if kind == "user" else InputAudioRawFrame
        frame: Frame = cls(audio=audio, sample_rate=rate, num_channels=channels)
        frame.transport_source = draw(st.sampled_from([None, "a"]))
        if draw(st.integers(0, 9)) == 0:
            frame.metadata["k"] = 1
        return frame
    if kind == "text":
        return TextFrame(text="t")
    return InputTransportMessageFrame(message={"n": 1})


@pytest.mark.generated
@given(st.lists(frames(), max_size=30))
@budget(ci=500, long=50_000)
def test_coalescing_keeps_every_byte_and_frame_in_order(inputs: list[Frame]):
    out = coalesce_audio(list(inputs))
    ids_in = {id(f) for f in inputs}
    # Frames that are not joinable audio: the same objects, same order.
    assert [id(f) for f in out if not joinable(f)] == [id(f) for f in inputs if not joinable(f)]

    # Between them, the joinable audio's bytes exactly, in order.
    def segments(frames: list[Frame]) -> list[bytes]:
        segs, cur = [], b""
        for f in frames:
            if joinable(f):
                cur += f.audio  # type: ignore[attr-defined]
            else:
                segs.append(cur)
                cur = b""
        return [*segs, cur]

    assert segments(out) == segments(inputs)
    # A joined frame is of one format: no input of another format lies inside its run.
    position = {id(f): k for k, f in enumerate(inputs)}
    k = 0
    for f in out:
        if id(f) in ids_in:
            k = position[id(f)] + 1
            continue
        size, fmt = 0, (f.sample_rate, f.num_channels, f.transport_source)  # type: ignore[attr-defined]
        parts = 0
        while size < len(f.audio):  # type: ignore[attr-defined]
            g = inputs[k]
            assert joinable(g) and (g.sample_rate, g.num_channels, g.transport_source) == fmt  # type: ignore[attr-defined]
            size += len(g.audio)  # type: ignore[attr-defined]
            parts += 1
            k += 1
        assert parts > 1
    # Fewer frames out only when joinable audio of one format was adjacent.
    adjacent = any(
        joinable(a)
        and joinable(b)
        and (a.sample_rate, a.num_channels, a.transport_source)  # type: ignore[attr-defined]
        == (b.sample_rate, b.num_channels, b.transport_source)  # type: ignore[attr-defined]
        for a, b in itertools.pairwise(inputs)
    )
    assert (len(out) < len(inputs)) == adjacent


def test_audio_that_cannot_be_delivered_is_not_joined():
    half = InputAudioRawFrame(audio=b"\x01", sample_rate=RATE, num_channels=1)
    other = InputAudioRawFrame(audio=b"\x02", sample_rate=RATE, num_channels=1)
    assert coalesce_audio([half, other]) == [half, other]
    one = InputAudioRawFrame(audio=b"\x01\x02", sample_rate=RATE, num_channels=1)
    assert coalesce_audio([one]) == [one]


async def numbered_chunks(n: int) -> tuple[list[bytes], list[bytes]]:
    serializer = ProtobufFrameSerializer()
    chunks = [pcm(0.02, seed=k + 1) for k in range(n)]
    messages = [await serializer.serialize(OutputAudioRawFrame(c, RATE, 1)) for c in chunks]
    return chunks, messages


async def test_a_client_that_is_behind_gets_what_waits_as_one_frame():
    chunks, messages = await numbered_chunks(40)
    async with record_server(send_on_connect=messages) as server:
        t = WebsocketClientTransport(server.uri, client_params())

        @t.event_handler("on_connected")
        async def _held(_t, _ws):
            time.sleep(0.3)  # noqa: ASYNC251 the loop is held: everything arrives meanwhile

        async with run_pipeline(t) as p:
            await wait_for(lambda: len(p.collector.audio()) == 40 * len(chunks[0]), 5)
            frames = p.collector.of(InputAudioRawFrame)
            assert p.collector.audio() == b"".join(chunks)  # every byte, in order
            assert len(frames) <= 2, len(frames)  # not 40
            assert t.stats.messages_in == 40
            assert t.stats.audio_secs_received == pytest.approx(0.8)
            assert not p.errors
            await p.end()


async def test_a_client_that_keeps_up_gets_one_frame_per_message():
    chunks, messages = await numbered_chunks(10)
    async with RestartableServer() as server:
        t = WebsocketClientTransport(server.uri, client_params())
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            for m in messages:
                await server.send_to_clients(m)
                await asyncio.sleep(0.03)
            await wait_for(lambda: len(p.collector.audio()) == 10 * len(chunks[0]), 5)
            assert [f.audio for f in p.collector.of(InputAudioRawFrame)] == chunks  # type: ignore[attr-defined]
            await p.end()
