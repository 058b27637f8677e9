"""Run Pipecat's own WebSocket *server* transport with an audio echo pipeline.

Usage::

    python examples/pipecat_echo_server.py --port 8765

Prints exactly one line, ``READY ws://127.0.0.1:PORT``, to stdout once the
server listens, then serves until SIGTERM/SIGINT. Logs go to stderr.

Frames use ``ProtobufFrameSerializer`` at 16 kHz mono, no WAV header. Each
``InputAudioRawFrame`` from the client comes back as an ``OutputAudioRawFrame``
(which the client deserializes as ``InputAudioRawFrame``) with the same bytes,
re-chunked by Pipecat's output transport into 40 ms chunks (1280 bytes) and
paced in real time. The output transport keeps a partial chunk until more
audio arrives; after ``--flush-after`` seconds without input audio, the echo
flushes it (padded with silence to a full chunk).

The transport serves one client at a time: while one is connected, another is
closed with code 1013.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time

from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame, TTSStoppedFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.workers.runner import WorkerRunner

SAMPLE_RATE = 16000


class Echo(FrameProcessor):
    """Turn each ``InputAudioRawFrame`` into an identical ``OutputAudioRawFrame``.

    Other frames pass through. When input audio pauses for ``flush_after``
    seconds, a ``TTSStoppedFrame`` is pushed so the output transport sends the
    partial chunk it is holding back.
    """

    def __init__(self, flush_after: float = 0.1):
        super().__init__()
        self._flush_after = flush_after
        self._last_audio = 0.0
        self._pending = False
        self._flush_task: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Echo input audio as output audio; pass everything else through."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(
                    audio=frame.audio,
                    sample_rate=frame.sample_rate,
                    num_channels=frame.num_channels,
                )
            )
            self._last_audio = time.monotonic()
            self._pending = True
            if self._flush_after > 0 and self._flush_task is None:
                self._flush_task = self.create_task(self._flush_loop())
        else:
            await self.push_frame(frame, direction)

    async def _flush_loop(self):
        while True:
            await asyncio.sleep(self._flush_after / 2)
            if self._pending and time.monotonic() - self._last_audio >= self._flush_after:
                self._pending = False
                await self.push_frame(TTSStoppedFrame())

    async def cleanup(self):
        """Stop the flush timer."""
        await super().cleanup()
        if self._flush_task:
            await self.cancel_task(self._flush_task)
            self._flush_task = None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main() -> None:
    """Parse arguments and run the echo server until signalled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--flush-after", type=float, default=0.1, help="0 disables flushing")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()

    logger.remove()
    logger.add(sys.stderr, level=args.log_level)

    # The transport passes the port straight to websockets.serve() and never
    # exposes the bound socket, so choose the port here.
    port = args.port or free_port()
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
            add_wav_header=False,
            serializer=ProtobufFrameSerializer(),
            allowed_origins=[],  # Ignore PIPECAT_ALLOWED_ORIGINS; accept any origin.
        ),
        host="127.0.0.1",
        port=port,
    )

    @transport.event_handler("on_websocket_ready")
    async def on_websocket_ready(transport):
        print(f"READY ws://127.0.0.1:{port}", flush=True)

    worker = PipelineWorker(
        Pipeline([transport.input(), Echo(args.flush_after), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE),
        idle_timeout_secs=None,
        cancel_on_idle_timeout=False,
        enable_rtvi=False,  # Otherwise RTVI messages would be mixed into the echo.
    )
    runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
    await runner.add_workers(worker)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main())
