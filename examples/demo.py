"""Demo: a Pipecat pipeline with our transport, talking to an embedded local echo server.

No network and no arguments needed::

    python3 dev.py demo          # or: .venv/bin/python examples/demo.py

It starts a WebSocket echo server on 127.0.0.1, runs a pipeline
``transport.input() -> Recorder -> transport.output()``, plays 3 s of a
synthetic tone sequence through it, waits for the echo, ends the pipeline
with an ``EndFrame`` and prints what the transport measured.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import struct
import time

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner
from websockets.asyncio.server import ServerConnection, serve

from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport

RATE = 16000


def tones(seconds: float, rate: int = RATE) -> bytes:
    """A few notes with soft edges, as 16-bit mono PCM."""
    notes = [440.0, 554.37, 659.25, 880.0]
    n = int(seconds * rate)
    per_note = n // len(notes)
    samples = []
    for i in range(n):
        f = notes[min(i // per_note, len(notes) - 1)]
        edge = min(1.0, (i % per_note) / 400, (per_note - i % per_note) / 400)
        samples.append(int(8000 * edge * math.sin(2 * math.pi * f * i / rate)))
    return struct.pack(f"<{n}h", *samples)


class Recorder(FrameProcessor):
    """Keep the audio the server sends back, with the arrival time of the first chunk."""

    def __init__(self):
        super().__init__()
        self.audio = bytearray()
        self.first_at: float | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.first_at = self.first_at or time.monotonic()
            self.audio.extend(frame.audio)
        else:
            await self.push_frame(frame, direction)


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(seconds: float) -> None:
    logger.remove()
    logger.add(lambda m: print(m, end=""), level="WARNING")
    clip = tones(seconds)
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        uri = f"ws://127.0.0.1:{port}/ws"
        print(f"Local echo server listening on {uri}")

        transport = WebsocketClientTransport(
            uri,
            WebsocketClientParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                audio_out_end_silence_secs=0,
            ),
        )
        recorder = Recorder()
        worker = PipelineWorker(
            Pipeline([transport.input(), recorder, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        started = 0.0

        @transport.event_handler("on_connected")
        async def on_connected(transport, websocket):
            nonlocal started
            print(f"Connected in {transport.stats.connect_time_secs * 1000:.1f} ms; playing")
            started = time.monotonic()
            await worker.queue_frames(
                [TTSStartedFrame(), TTSAudioRawFrame(clip, RATE, 1), TTSStoppedFrame()]
            )

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            print(f"Connection failed: {error}")

        async def end_when_echoed():
            deadline = time.monotonic() + seconds + 10
            while len(recorder.audio) < len(clip) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await worker.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        ender = asyncio.create_task(end_when_echoed())
        await runner.run()
        await ender
        elapsed = time.monotonic() - started

    s = transport.stats
    exact = bytes(recorder.audio[: len(clip)]) == clip
    first = (recorder.first_at - started) * 1000 if recorder.first_at else float("nan")
    rows = [
        ("connect time", f"{s.connect_time_secs * 1000:.1f} ms"),
        ("first echo after", f"{first:.1f} ms"),
        ("audio sent", f"{s.audio_secs_sent:.2f} s in {s.audio_frames_sent} chunks"),
        ("audio received", f"{len(recorder.audio) / (2 * RATE):.2f} s (byte-exact: {exact})"),
        ("call duration", f"{elapsed:.2f} s (pacing: {s.audio_secs_sent / elapsed:.3f}x)"),
        ("bytes out / in", f"{s.bytes_out} / {s.bytes_in}"),
        ("decode errors / dropped", f"{s.decode_errors} / {s.dropped_frames}"),
        ("closed with", f"{s.last_close_code}"),
    ]
    print()
    for name, value in rows:
        print(f"  {name:<24} {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the clip")
    asyncio.run(main(parser.parse_args().seconds))
