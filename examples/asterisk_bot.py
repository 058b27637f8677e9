"""A bot that dials Asterisk's chan_websocket ("incoming" mode) with pipecat-wsclient.

On the Asterisk side, create the channel with the special ``INCOMING``
connection id, e.g. in the dialplan::

    exten => 100,1,Dial(WebSocket/INCOMING/c(slin16)f(json))

and hand the channel's ``MEDIA_WEBSOCKET_CONNECTION_ID`` to the bot::

    .venv/bin/python examples/asterisk_bot.py --base ws://pbx:8088 --connection-id <id>

Without Asterisk, run the fake channel driver used by the tests::

    .venv/bin/python tests/support/fake_asterisk.py --port 8088 --format slin16 --json
    .venv/bin/python examples/asterisk_bot.py --uri ws://127.0.0.1:8088/media/pipecat-example

The bot greets the caller with a short tone sequence, then echoes what the
caller says (``--mode echo``, the default) or answers each key press with a
beep (``--mode tone``), and hangs up after ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio

from demo import RATE, tones
from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.protocols.asterisk import (
    AsteriskSerializer,
    ControlMessage,
    asterisk_media_uri,
    asterisk_params,
)


class Answer(FrameProcessor):
    """Echo the caller (``echo``) or beep back for every key pressed (``tone``)."""

    def __init__(self, mode: str):
        super().__init__()
        self._mode = mode
        self.heard_secs = 0.0
        self.digits: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.heard_secs += len(frame.audio) / (2 * frame.sample_rate)
            if self._mode == "echo":
                await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
            return
        if isinstance(frame, InputDTMFFrame):
            digit = frame.button.value
            self.digits.append(digit)
            logger.info(f"caller pressed {digit}")
            if self._mode == "tone":
                await self.push_frame(TTSAudioRawFrame(tones(0.3), RATE, 1))
        await self.push_frame(frame, direction)


async def main(args: argparse.Namespace) -> None:
    uri = args.uri or asterisk_media_uri(args.base, args.connection_id)

    def on_event(message: ControlMessage) -> None:
        if message.name not in ("MEDIA_START", "DTMF_END"):
            logger.info(f"Asterisk: {message.name} {message.params}")

    serializer = AsteriskSerializer(
        control_format=args.control,
        media_buffering=args.buffering,
        answer=args.answer,
        on_event=on_event,
    )
    transport = WebsocketClientTransport(uri, asterisk_params(serializer))
    answer = Answer(args.mode)
    worker = PipelineWorker(
        Pipeline([transport.input(), answer, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        enable_rtvi=False,
    )

    @transport.event_handler("on_connected")
    async def on_connected(transport, websocket):
        greeting = tones(1.0)
        await worker.queue_frames(
            [TTSStartedFrame(), TTSAudioRawFrame(greeting, RATE, 1), TTSStoppedFrame()]
        )
        await asyncio.sleep(args.seconds)
        await worker.queue_frame(EndFrame())  # the serializer sends HANGUP

    @transport.event_handler("on_connection_error")
    async def on_connection_error(transport, error):
        logger.error(f"call failed: {error}")

    runner = WorkerRunner(handle_sigint=True)
    await runner.add_workers(worker)
    await runner.run()
    start = serializer.media_start
    print(
        f"call on {start.channel if start else '?'} ({start.format if start else '?'}): "
        f"heard {answer.heard_secs:.2f}s, digits {answer.digits}, "
        f"XOFF {serializer.stats.xoff}, events {dict(serializer.stats.events)}; "
        f"transport: {transport.stats}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Dial an Asterisk chan_websocket channel.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--uri", help="the full media URI, ws(s)://host:port/media/<id>")
    target.add_argument("--base", help="Asterisk's HTTP server, e.g. ws://pbx:8088")
    parser.add_argument("--connection-id", help="MEDIA_WEBSOCKET_CONNECTION_ID (with --base)")
    parser.add_argument("--mode", choices=["echo", "tone"], default="echo")
    parser.add_argument("--seconds", type=float, default=5.0, help="hang up after this long")
    parser.add_argument("--control", choices=["auto", "plain-text", "json"], default="auto")
    parser.add_argument("--buffering", action="store_true", help="START/STOP_MEDIA_BUFFERING")
    parser.add_argument("--answer", action="store_true", help="send ANSWER (dialed with n)")
    args = parser.parse_args()
    if args.base and not args.connection_id:
        parser.error("--base needs --connection-id")
    asyncio.run(main(args))
