"""A bot that dials a WebSocket voice server with pipecat-wsclient.

Start a server (Pipecat's own server transport, echoing audio)::

    .venv/bin/python examples/pipecat_echo_server.py --port 8765

then run the bot against it::

    .venv/bin/python examples/bot.py ws://127.0.0.1:8765

The bot speaks a short tone sequence; whatever the server sends back is
played into a ``Recorder`` (replace it with your STT/LLM/TTS services).
"""

from __future__ import annotations

import argparse
import asyncio

from demo import RATE, Recorder, tones
from pipecat.frames.frames import EndFrame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient import WebsocketClientParams, WebsocketClientTransport


async def main(uri: str, seconds: float) -> None:
    transport = WebsocketClientTransport(
        uri,
        WebsocketClientParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            # Pipecat's server transports would play a WAV header as audio.
            add_wav_header=False,
        ),
    )
    recorder = Recorder()
    worker = PipelineWorker(
        Pipeline([transport.input(), recorder, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        enable_rtvi=False,
    )

    @transport.event_handler("on_connected")
    async def on_connected(transport, websocket):
        clip = tones(seconds)
        await worker.queue_frames(
            [TTSStartedFrame(), TTSAudioRawFrame(clip, RATE, 1), TTSStoppedFrame()]
        )
        await asyncio.sleep(seconds + 1.0)
        await worker.queue_frame(EndFrame())

    @transport.event_handler("on_connection_error")
    async def on_connection_error(transport, error):
        print(f"call failed: {error}")

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await runner.run()
    print(f"heard {len(recorder.audio) / (2 * RATE):.2f} s back; stats: {transport.stats}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Dial a WebSocket voice server.")
    parser.add_argument("uri", nargs="?", default="ws://127.0.0.1:8765")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.uri, args.seconds))
