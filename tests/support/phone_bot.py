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

With ``?record=PATH`` (either mode) the bot writes what its pipeline
received (16 kHz mono WAV) to PATH when the caller hangs up, and reports
each onset of the caller's voice (``voice-heard``).

With ``?pace=off`` in the URL the bot sends its audio as fast as it makes it,
without Pipecat's playback clock (like a bot whose TTS runs ahead of real
time), so a caller that sends ahead of time gets a backlog to clear.

With ``?bot=answer`` it is a conversational voice bot instead (see
:class:`AnswerOptions` for the other query options: ``delay``, ``answer``,
``dtmf_answer``, ``stop_secs``, ``start_secs``, ``interrupt``,
``hangup_after``): ``input -> VADProcessor (Silero) -> Answerer -> eSpeak NG
TTS -> output``. It never echoes; each utterance (the VAD's stop) is answered
``delay`` seconds later with ``answer``, each DTMF entry (digits less than
0.5 s apart) with ``dtmf_answer``; the caller's speech over an answer
interrupts it (Pipecat drops the rest and the serializer sends the carrier's
clear); after ``hangup_after`` answers the bot ends the call.

Everything a test needs is printed to stdout as ``REPORT {json}`` lines, each
with ``conn`` (the connection's number) and ``event``:

- ``connected`` (``query``): the WebSocket was accepted;
- ``rejected`` (``error``): the query's answer options were invalid (closed, 1008);
- ``handshake`` (``message``): each message ``parse_telephony_websocket`` read;
- ``start`` (``provider``, ``call_data``): what Pipecat made of the handshake;
- ``received`` (``message``): each JSON message from the carrier other than
  media, as the bot's serializer got it (marks, DTMF, stop, acks...);
- ``dtmf`` (``digit``; ``time`` when answering): an ``InputDTMFFrame`` reached
  the pipeline;
- ``mark-sent`` (``name``) and ``clear-sent``: what the echo bot asked for;
- ``disconnected`` (``audio_in_secs``, ``audio_out_secs``): the carrier hung up;
- ``finished``: the bot's pipeline has ended;
- with ``?record=PATH``: ``voice-heard`` (``time``, ``wall``: ``time.time()``)
  when a 20 ms input frame is louder than -40 dBFS after at least 0.5 s
  quieter, and ``recorded`` (``path``, ``secs``) once the WAV is written.

When answering, also (``time`` is ``time.monotonic()``, system wide on Linux,
so another process can compare it with its own clock):

- ``user-started-speaking`` / ``user-stopped-speaking`` (``time``): the VAD's
  decisions (``start_secs`` after the speech began, ``stop_secs`` after it ended);
- ``answer-requested`` (``n``, ``text``, ``time``): the bot asked its TTS to
  speak (``delay`` after the VAD's stop, or once a DTMF entry is complete);
- ``answer-started`` (``n``, ``text``, ``time``): the first audio of answer
  ``n`` went out on the WebSocket;
- ``answer-finished`` (``n``, ``secs``, ``time``): its last audio went out
  (``secs`` of it; not sent if the answer was interrupted);
- ``bot-started-speaking`` / ``bot-stopped-speaking`` (``time``): Pipecat's
  output transport's ``BotStartedSpeakingFrame`` / ``BotStoppedSpeakingFrame``;
- ``interrupted`` (``n``, ``time``): the caller spoke over an answer; the bot
  broadcast an ``InterruptionFrame`` (the carrier's clear goes out);
- ``hung-up`` (``answers``, ``time``): the bot ended the call (``EndWorkerFrame``:
  Pipecat pushes ``EndFrame`` through the pipeline and the output closes the
  WebSocket; carriers' REST hang-ups are disabled here).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import socket
import sys
import time
import wave
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
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

from pipecat_wsclient.scenario.espeak import EspeakTTSService

RATE = 16000
MARK_NAME = "echo-1s"
MARK_AFTER_SECS = 1.0
INTERRUPT_DIGIT = "9"
DTMF_GAP_SECS = 0.5
"""Digits less than this apart are one entry, answered once."""
HANGUP_GRACE_SECS = 0.3
"""How long after its last answer should have played the bot hangs up: the way
to the caller (resamplers, the carrier's buffer) holds the end a little longer."""
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


VOICE_DB = -40.0
"""An input frame louder than this (dBFS) is the caller's voice."""
VOICE_GAP_SECS = 0.5
"""Quiet input frames for this long before a voice onset is reported again."""


class Recorder(FrameProcessor):
    """Keep the caller's audio as the pipeline receives it; report voice onsets."""

    def __init__(self, conn: int, path: str):
        super().__init__()
        self._conn = conn
        self._path = path
        self._audio = bytearray()
        self._quiet_secs = VOICE_GAP_SECS

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._audio += frame.audio
            samples = memoryview(frame.audio).cast("h")
            rms = math.sqrt(sum(x * x for x in samples) / max(1, len(samples))) / 32768
            if 20 * math.log10(max(rms, 1e-9)) > VOICE_DB:
                if self._quiet_secs >= VOICE_GAP_SECS:
                    report(self._conn, "voice-heard", time=time.monotonic(), wall=time.time())
                self._quiet_secs = 0.0
            else:
                self._quiet_secs += len(samples) / frame.sample_rate
        await self.push_frame(frame, direction)

    def write(self) -> None:
        """Write what was received as a 16 kHz mono WAV."""
        with wave.open(self._path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(bytes(self._audio))
        report(self._conn, "recorded", path=self._path, secs=len(self._audio) / (2 * RATE))


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


@dataclass(frozen=True)
class AnswerOptions:
    """How the answering bot behaves; each field is a query option of the same name.

    Parameters:
        delay: Seconds from the VAD's "user stopped speaking" to asking the TTS
            for the answer.
        answer: What the bot says to each utterance.
        dtmf_answer: What it says to a DTMF entry; ``{digits}`` becomes the
            digits, space separated (``"1 2"``).
        stop_secs: The VAD's ``stop_secs`` (silence before "stopped speaking").
        start_secs: The VAD's ``start_secs`` (speech before "started speaking").
        interrupt: Whether the caller's speech interrupts an answer
            (``1``/``0`` in the query).
        hangup_after: End the call once this many answers have been spoken in
            full and have played at the carrier (plus ``HANGUP_GRACE_SECS``);
            None never.
    """

    delay: float = 0.5
    answer: str = "We are open from nine to five, Monday to Friday."
    dtmf_answer: str = "You pressed {digits}."
    stop_secs: float = 0.3
    start_secs: float = 0.2
    interrupt: bool = True
    hangup_after: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AnswerOptions:
        """The options in a WebSocket URL's query (others keep their defaults).

        Raises:
            ValueError: For a time that is not a finite number of seconds, an
                ``interrupt`` other than 1/0/true/false, or a ``hangup_after`` below 1.
        """
        values: dict[str, Any] = {}
        for name in ("delay", "stop_secs", "start_secs"):
            if name in query:
                values[name] = float(query[name])
                if not 0 <= values[name] < math.inf:
                    raise ValueError(f"{name} must be a time in seconds, not {query[name]!r}")
        for name in ("answer", "dtmf_answer"):
            if name in query:
                values[name] = query[name]
        if "interrupt" in query:
            flag = query["interrupt"].lower()
            if flag not in ("1", "0", "true", "false"):
                raise ValueError(f"interrupt must be 1 or 0, not {query['interrupt']!r}")
            values["interrupt"] = flag in ("1", "true")
        if "hangup_after" in query:
            values["hangup_after"] = int(query["hangup_after"])
            if values["hangup_after"] < 1:
                raise ValueError(f"hangup_after must be at least 1, not {query['hangup_after']!r}")
        return cls(**values)


@dataclass
class _Answer:
    """One answer on its way out."""

    n: int
    text: str
    context_id: str | None = None
    secs: float = 0.0  # of its audio sent so far


class Answerer(FrameProcessor):
    """Answer each utterance and DTMF entry with speech; let the caller barge in.

    Put it between a ``VADProcessor`` and a TTS service, and a
    :class:`SentFrames` after the output transport that hands it what went out::

        answerer = Answerer(conn, options)
        Pipeline([transport.input(), vad, answerer, tts, transport.output(),
                  SentFrames(answerer.sent)])

    The caller's audio stops here (no echo). The bot counts as busy (the
    caller's speech interrupts it) from asking for an answer until the
    carrier has played all of it: what was sent, played from when it was
    sent, without gaps. Pipecat's output paces itself in real time (a little
    ahead), so that is about its ``BotStoppedSpeakingFrame``; with
    ``?pace=off`` it sends far ahead, and the carrier plays on after it.
    """

    def __init__(self, conn: int, options: AnswerOptions):
        super().__init__()
        self._conn = conn
        self._options = options
        self._reply_task: asyncio.Task | None = None  # waiting `delay` after an utterance
        self._dtmf_task: asyncio.Task | None = None  # waiting for more digits
        self._hangup_task: asyncio.Task | None = None
        self._digits: list[str] = []
        self._requested: deque[_Answer] = deque()  # asked of the TTS, not started going out
        self._current: _Answer | None = None  # going out
        self._count = 0  # answers asked for
        self._spoken = 0  # answers sent in full
        self._plays_until = 0.0  # when the carrier will have played what was sent
        self.audio_in_secs = 0.0
        self.audio_out_secs = 0.0

    def busy(self, now: float) -> bool:
        """Whether an answer is asked for, going out, or still playing at the carrier."""
        return bool(self._requested) or self._current is not None or now < self._plays_until

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer the VAD's and the caller's frames; drop the caller's audio."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio_in_secs += len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._user_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            report(self._conn, "user-stopped-speaking", time=time.monotonic())
            await self._cancel(self._reply_task)
            self._reply_task = self.create_task(self._reply_after_delay(), "reply")
        elif isinstance(frame, InputDTMFFrame):
            digit = str(frame.button.value)
            report(self._conn, "dtmf", digit=digit, time=time.monotonic())
            self._digits.append(digit)
            await self._cancel(self._dtmf_task)
            self._dtmf_task = self.create_task(self._reply_to_digits(), "dtmf-reply")
        await self.push_frame(frame, direction)

    async def sent(self, frame: Frame) -> None:
        """Note a frame the output transport has sent (or pushed on): audio, TTS and bot events."""
        now = time.monotonic()
        if isinstance(frame, BotStartedSpeakingFrame):
            report(self._conn, "bot-started-speaking", time=now)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            report(self._conn, "bot-stopped-speaking", time=now)
        elif isinstance(frame, TTSStartedFrame) and self._requested:
            self._current = self._requested.popleft()
            self._current.context_id = frame.context_id
        elif isinstance(frame, TTSAudioRawFrame):
            secs = len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)
            self.audio_out_secs += secs
            self._plays_until = max(self._plays_until, now) + secs
            answer = self._current
            if answer is not None:
                if answer.secs == 0:
                    report(self._conn, "answer-started", n=answer.n, text=answer.text, time=now)
                answer.secs += secs
        elif isinstance(frame, TTSStoppedFrame):
            answer = self._current
            if answer is not None and answer.context_id == frame.context_id:
                self._current = None
                self._spoken += 1
                report(
                    self._conn, "answer-finished", n=answer.n, secs=round(answer.secs, 3), time=now
                )
                limit = self._options.hangup_after
                if limit is not None and self._spoken >= limit and self._hangup_task is None:
                    self._hangup_task = self.create_task(self._hang_up(), "hangup")

    async def cleanup(self):
        """Cancel the timers."""
        await super().cleanup()
        for task in (self._reply_task, self._dtmf_task, self._hangup_task):
            await self._cancel(task)

    async def _user_started(self) -> None:
        now = time.monotonic()
        report(self._conn, "user-started-speaking", time=now)
        await self._cancel(self._reply_task)
        self._reply_task = None
        if self._options.interrupt and self.busy(now):
            interrupted = self._current.n if self._current else self._count
            # Forget the answers first: their frames stop wherever they are.
            self._requested.clear()
            self._current = None
            self._plays_until = now
            await self.broadcast_interruption()
            report(self._conn, "interrupted", n=interrupted, time=time.monotonic())

    async def _reply_after_delay(self) -> None:
        await asyncio.sleep(self._options.delay)
        self._reply_task = None
        await self._say(self._options.answer)

    async def _reply_to_digits(self) -> None:
        await asyncio.sleep(DTMF_GAP_SECS)
        self._dtmf_task = None
        digits, self._digits = self._digits, []
        await self._say(self._options.dtmf_answer.replace("{digits}", " ".join(digits)))

    async def _say(self, text: str) -> None:
        self._count += 1
        self._requested.append(_Answer(self._count, text))
        report(self._conn, "answer-requested", n=self._count, text=text, time=time.monotonic())
        await self.push_frame(TTSSpeakFrame(text))

    async def _hang_up(self) -> None:
        await asyncio.sleep(max(0.0, self._plays_until - time.monotonic()) + HANGUP_GRACE_SECS)
        report(self._conn, "hung-up", answers=self._spoken, time=time.monotonic())
        await self.push_frame(EndWorkerFrame(reason="hangup_after"))

    async def _cancel(self, task: asyncio.Task | None) -> None:
        if task is not None and task is not asyncio.current_task() and not task.done():
            await self.cancel_task(task)


class SentFrames(FrameProcessor):
    """Pass frames on; hand those coming out of the output transport to ``on_sent``.

    After ``transport.output()``, the downstream frames are what it has sent
    (audio, pushed on once written) and its ``BotStarted/StoppedSpeakingFrame``.
    """

    def __init__(self, on_sent):
        super().__init__()
        self._on_sent = on_sent

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Show downstream frames to ``on_sent``, then push every frame on."""
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            await self._on_sent(frame)
        await self.push_frame(frame, direction)


def create_app(provider: str) -> FastAPI:
    """The bot's FastAPI app; ``provider`` is ``auto`` (detect) or ``vonage``."""
    app = FastAPI()

    @app.websocket("/ws")
    async def phone_call(websocket: WebSocket):
        await websocket.accept()
        conn = next(_connections)
        query = websocket.query_params
        report(conn, "connected", query=dict(query))
        options: AnswerOptions | None = None
        if query.get("bot", "echo") == "answer":
            try:
                options = AnswerOptions.from_query(query)
            except ValueError as e:
                report(conn, "rejected", error=str(e))
                await websocket.close(code=1008)
                return
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
        if query.get("pace") == "off":
            # The output is created by the transport; replace it before the pipeline exists.
            transport._output = UnpacedOutput(transport, transport._client, params)
        bot: Echo | Answerer
        if options is None:
            bot = Echo(conn, detected, stream_id)
            processors = [transport.input(), bot, transport.output()]
        else:
            bot = Answerer(conn, options)
            vad = SileroVADAnalyzer(
                params=VADParams(start_secs=options.start_secs, stop_secs=options.stop_secs)
            )
            processors = [
                transport.input(),
                VADProcessor(vad_analyzer=vad),
                bot,
                EspeakTTSService(),
                transport.output(),
                SentFrames(bot.sent),
            ]
        recorder = Recorder(conn, query["record"]) if "record" in query else None
        if recorder is not None:
            processors.insert(1, recorder)
        worker = PipelineWorker(
            Pipeline(processors),
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
                audio_in_secs=round(bot.audio_in_secs, 3),
                audio_out_secs=round(bot.audio_out_secs, 3),
            )
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        if recorder is not None:
            recorder.write()
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
