"""A Pipecat phone bot, built the way Pipecat's telephony examples build one.

Run ``python tests/support/phone_bot.py --port 0 [--provider auto|vonage]``.
It serves a WebSocket at ``/ws`` (uvicorn on 127.0.0.1; ``--port 0`` picks a
free port) and prints ``READY ws://127.0.0.1:PORT/ws`` once listening.

On each connection it does what a Pipecat telephony bot does: accept,
``parse_telephony_websocket()`` to detect the carrier and read the call's
ids and custom parameters (with ``--provider vonage``, which that function
does not detect, the Vonage serializer is used as Pipecat's Vonage example
does), then run a pipeline on ``FastAPIWebsocketTransport`` with Pipecat's own
serializer for the carrier, hang-up REST calls disabled (no network), at 16 kHz:

- every input audio frame is echoed back as output audio;
- once ~1 s of audio has been echoed, the carrier's mark message
  (Twilio/Telnyx/Exotel ``mark``, Plivo ``checkpoint``; Vonage has none) is
  pushed as an ``OutputTransportMessageFrame``, so it goes out after that audio;
- DTMF is reported, and ``9`` interrupts the bot (``InterruptionFrame``: the
  serializer sends the carrier's clear).

With ``?pace=off`` in the URL the bot sends its audio as fast as it makes it,
without Pipecat's playback clock (like a bot whose TTS runs ahead of real
time), so a caller that sends ahead of time gets a backlog to clear.

Everything a test needs is printed to stdout as ``REPORT {json}`` lines, each
with ``conn`` (the connection's number) and ``event``:

- ``connected`` (``query``): the WebSocket was accepted;
- ``handshake`` (``message``): each message ``parse_telephony_websocket`` read;
- ``start`` (``provider``, ``call_data``): what Pipecat made of the handshake;
- ``received`` (``message``): each JSON message from the carrier other than
  media, as the bot's serializer got it (marks, DTMF, stop, acks...);
- ``dtmf`` (``digit``): an ``InputDTMFFrame`` reached the pipeline;
- ``mark-sent`` (``name``) and ``clear-sent``: what the bot asked for;
- ``disconnected`` (``audio_in_secs``, ``audio_out_secs``): the carrier hung up;
- ``finished``: the bot's pipeline has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.serializers.vonage import VonageFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner

RATE = 16000
MARK_NAME = "echo-1s"
MARK_AFTER_SECS = 1.0
INTERRUPT_DIGIT = "9"
VONAGE_PACKET_BYTES = 640
"""20 ms of 16 kHz PCM16: the Audio Connector's framing (as in Pipecat's Vonage example)."""

_connections = itertools.count(1)


def report(conn: int, event: str, **fields: Any) -> None:
    """Print one ``REPORT`` line for the test."""
    print("REPORT " + json.dumps({"conn": conn, "event": event, **fields}), flush=True)


def make_serializer(provider: str, call_data: Any) -> FrameSerializer:
    """Pipecat's serializer for ``provider``, as its runner builds it, without hang-up calls."""
    if provider == "twilio":
        return TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "telnyx":
        return TelnyxFrameSerializer(
            stream_id=call_data["stream_id"],
            call_control_id=call_data["call_id"],
            outbound_encoding=call_data["outbound_encoding"],
            inbound_encoding="PCMU",
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "plivo":
        return PlivoFrameSerializer(
            stream_id=call_data["stream_id"],
            call_id=call_data["call_id"],
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "exotel":
        return ExotelFrameSerializer(
            stream_sid=call_data["stream_id"], call_sid=call_data["call_id"]
        )
    if provider == "vonage":
        return VonageFrameSerializer(VonageFrameSerializer.InputParams(vonage_sample_rate=RATE))
    raise ValueError(f"unsupported provider {provider!r}")


def mark_message(provider: str, stream_id: str | None, name: str) -> dict | None:
    """The carrier's mark request, or None for carriers without marks (Vonage)."""
    if provider == "twilio":
        return {"event": "mark", "streamSid": stream_id, "mark": {"name": name}}
    if provider == "telnyx":
        return {"event": "mark", "mark": {"name": name}}
    if provider == "plivo":
        return {"event": "checkpoint", "streamId": stream_id, "name": name}
    if provider == "exotel":
        return {"event": "mark", "stream_sid": stream_id, "mark": {"name": name}}
    return None


def report_received(conn: int, serializer: FrameSerializer) -> None:
    """Report every non-media message the serializer is given, then let it decode it.

    Pipecat's serializers return None for marks, stops and acknowledgements,
    so the pipeline never sees them; this is the only place they show.
    """
    deserialize = serializer.deserialize

    async def reporting(data: str | bytes) -> Frame | None:
        if isinstance(data, str):
            try:
                message = json.loads(data)
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("event") != "media":
                report(conn, "received", message=message)
        return await deserialize(data)

    serializer.deserialize = reporting  # type: ignore[method-assign]


def record_handshake(conn: int, websocket: WebSocket) -> None:
    """Report the messages ``parse_telephony_websocket`` reads (and consumes)."""
    iter_text = websocket.iter_text

    async def recording():
        async for text in iter_text():
            try:
                report(conn, "handshake", message=json.loads(text))
            except ValueError:
                report(conn, "handshake", text=text)
            yield text

    websocket.iter_text = recording  # type: ignore[method-assign]


class UnpacedOutput(FastAPIWebsocketOutputTransport):
    """Pipecat's WebSocket output without its playback clock: audio goes out as made."""

    async def _write_audio_sleep(self):
        await asyncio.sleep(0)


class Echo(FrameProcessor):
    """Echo the caller, ask for a mark after ~1 s, report DTMF, interrupt on ``9``."""

    def __init__(self, conn: int, provider: str, stream_id: str | None):
        super().__init__()
        self._conn = conn
        self._mark = mark_message(provider, stream_id, MARK_NAME)
        self.audio_in_secs = 0.0
        self.audio_out_secs = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            secs = len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)
            self.audio_in_secs += secs
            await self.push_frame(
                OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
            )
            self.audio_out_secs += secs
            if self._mark is not None and self.audio_out_secs >= MARK_AFTER_SECS:
                await self.push_frame(OutputTransportMessageFrame(message=self._mark))
                report(self._conn, "mark-sent", name=MARK_NAME)
                self._mark = None
        elif isinstance(frame, InputDTMFFrame):
            digit = str(frame.button.value)
            report(self._conn, "dtmf", digit=digit)
            await self.push_frame(frame, direction)
            if digit == INTERRUPT_DIGIT:
                report(self._conn, "clear-sent")
                await self.broadcast_interruption()
        else:
            await self.push_frame(frame, direction)


def create_app(provider: str) -> FastAPI:
    """The bot's FastAPI app; ``provider`` is ``auto`` (detect) or ``vonage``."""
    app = FastAPI()

    @app.websocket("/ws")
    async def phone_call(websocket: WebSocket):
        await websocket.accept()
        conn = next(_connections)
        report(conn, "connected", query=dict(websocket.query_params))
        call_data: Any = None
        if provider == "vonage":
            detected, stream_id = "vonage", None
            report(conn, "start", provider=detected, call_data={})
        else:
            record_handshake(conn, websocket)
            detected, call_data = await parse_telephony_websocket(websocket)
            stream_id = call_data.stream_id
            report(conn, "start", provider=detected, call_data=call_data.model_dump(by_alias=True))
        serializer = make_serializer(detected, call_data)
        report_received(conn, serializer)
        params = FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
            fixed_audio_packet_size=VONAGE_PACKET_BYTES if detected == "vonage" else None,
        )
        transport = FastAPIWebsocketTransport(websocket=websocket, params=params)
        if websocket.query_params.get("pace") == "off":
            # The output is created by the transport; replace it before the pipeline exists.
            transport._output = UnpacedOutput(transport, transport._client, params)
        echo = Echo(conn, detected, stream_id)
        worker = PipelineWorker(
            Pipeline([transport.input(), echo, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=None,
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(_transport, _websocket):
            report(
                conn,
                "disconnected",
                audio_in_secs=round(echo.audio_in_secs, 3),
                audio_out_secs=round(echo.audio_out_secs, 3),
            )
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        report(conn, "finished")

    return app


async def serve(port: int, provider: str) -> None:
    """Listen on 127.0.0.1:``port`` (0: any free port) and print ``READY <uri>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(provider), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    print(f"READY ws://127.0.0.1:{port}/ws", flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--provider", choices=["auto", "vonage"], default="auto")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    asyncio.run(serve(args.port, args.provider))


if __name__ == "__main__":
    main()
