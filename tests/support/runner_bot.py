#
# Copyright (c) 2025, Daily
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Pipecat's official Twilio chatbot, run by Pipecat's development runner, offline.

A bot built the way others build theirs, not the way our tools assume: this
file is ``twilio-chatbot/inbound/bot.py`` of ``pipecat-ai/pipecat-examples``
(repository HEAD 39261fcd30e41d29c4435b9f16e810a394c03f7e; the file last
changed in 2b1e3753c22647e2d8d19da6ec371d9403e8204e, "Small updates to align
examples to norms") kept as close to verbatim as it can be without the
network or API keys.

Kept as is: ``load_dotenv(override=True)``; ``CallInfo`` and ``get_call_info``
(the Twilio REST lookup; without ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``
it returns None); ``save_audio`` (a ``recording_*.wav`` in the working
directory: run the bot in a scratch one); the entry point ``async def
bot(runner_args, testing=False)`` with its ``twilio`` transport params and
``create_transport`` call; ``run_bot`` with its pipeline ``input -> stt ->
user_aggregator -> llm -> tts -> output -> audiobuffer -> assistant_aggregator``,
``LLMContextAggregatorPair`` with ``SileroVADAnalyzer()`` and Pipecat's default
turn strategies (VAD start; Smart Turn v3 stop, whose model ships with
Pipecat), ``PipelineWorker`` at 8 kHz with metrics and the runner's idle
timeout, ``on_client_connected`` (recording on, a developer message asking
for an introduction and an ``LLMRunFrame``: the bot greets), and
``on_client_disconnected`` cancelling the worker; ``WorkerRunner(
handle_sigint=..., force_gc=True)``; ``main()`` of ``pipecat.runner.run``.

Changed, and only these:

- ``GoogleLLMService`` -> :class:`FixedAnswerLLM`: answers each user turn
  with :data:`ANSWER` and the greeting request with :data:`GREETING`, as LLM
  text between ``LLMFullResponseStart/EndFrame``.
- ``DeepgramSTTService`` -> :class:`FixedTranscriptSTT`: a segmented STT (on
  the VAD's segments) that hears every segment as :data:`HEARD`, finalized,
  so that the default turn stop strategy (which waits for a transcript) ends
  the user's turn.
- ``CartesiaTTSService`` -> ``EspeakTTSService`` (eSpeak NG, offline), with
  the example's ``push_silence_after_stop=testing``. The three keys are still
  read with ``os.getenv``; nothing uses them.
- The transport: the example's ``create_transport`` builds
  ``TwilioFrameSerializer`` with its default ``auto_hang_up=True``, which
  raises ``ValueError: auto_hang_up is enabled but missing required
  parameters: account_sid, auth_token ...`` when ``TWILIO_ACCOUNT_SID`` and
  ``TWILIO_AUTH_TOKEN`` are not set, and would call Twilio's REST API to hang
  up when they are. So by default :func:`create_offline_transport` does what
  ``create_transport`` does for a telephony websocket (``parse_telephony_websocket``,
  the provider's params, ``add_wav_header=False``, the serializer from the
  parsed ``stream_id``/``call_id``, ``FastAPIWebsocketTransport``) with
  ``auto_hang_up=False``, as our README tells bot owners to run locally.
  With ``RUNNER_BOT_CRASH=1`` the example's own ``create_transport`` line runs:
  with no Twilio credentials in the environment, ``bot()`` raises on every
  connection, after reading the caller's ``connected`` and ``start`` (this is
  what the unmodified example does when run without its keys); likewise for
  Telnyx and Plivo, whose serializers need their own credentials (below).
- Each ``bot()`` call prints ``RUNNER_BOT connection <session id>`` on stdout,
  flushed, so a test counts the connections the runner handed to the bot; and,
  once the transport is made, ``RUNNER_BOT call_data <json>``: the transport
  detected and the ids ``parse_telephony_websocket`` read from the caller's
  ``start``, so a test sees which ids reached the bot.
- ``transport_params`` has the ``telnyx``, ``plivo`` and ``exotel`` entries
  too: the ``bot()`` of pipecat-examples' ``telnyx-chatbot/inbound``,
  ``plivo-chatbot/inbound`` and ``exotel-chatbot/inbound`` (same HEAD) is this
  one with only its own key, the same ``FastAPIWebsocketParams(audio_in_enabled=True,
  audio_out_enabled=True)``, so one file runs as any of the four examples
  (``-t twilio``, ``-t telnyx``, ``-t plivo``, ``-t exotel``). The Twilio REST
  lookup (``get_call_info``) runs for Twilio calls only.

What ``create_transport`` needs, per provider (``pipecat.runner.utils``, Pipecat
1.14): Twilio ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN``, Telnyx
``TELNYX_API_KEY``, Plivo ``PLIVO_AUTH_ID`` and ``PLIVO_AUTH_TOKEN``: the
serializer's ``auto_hang_up`` (on by default) raises without them and, with
them, hangs up through the carrier's REST API when the pipeline ends. Exotel's
serializer makes no REST call and needs nothing: with ``RUNNER_BOT_CRASH=1``
and ``-t exotel`` the example's own line runs, and works.

Run as the example's README says (``uv run bot.py --transport twilio``), with
a host and port: ``python tests/support/runner_bot.py -t twilio --host
127.0.0.1 --port PORT`` (or ``-t telnyx``, ``-t plivo``, ``-t exotel``). The
runner serves the media stream at ``ws://HOST:PORT/ws`` (and ``/ws/{token}``)
and, for ``-t twilio``, ``telnyx`` and ``plivo``, its webhook at ``POST /``
(TwiML, TeXML or Plivo XML naming ``wss://None/ws`` without ``--proxy``; for
``-t exotel`` a JSON note, Exotel having no webhook); it prints a banner and
"Bot ready! (Twilio)" with the stream's URL *before* uvicorn binds the port
(uvicorn then logs "Uvicorn running on ..." on stderr), so readiness is the port accepting
connections: ``tests/support/runner_bots.py`` polls it. The runner needs
``python-multipart`` (its upload routes are always mounted), which
``pipecat-ai[runner]`` does not pull in.
"""

import datetime
import io
import json
import os
import sys
import wave
from collections.abc import AsyncGenerator

import aiofiles
import aiohttp
from dotenv import load_dotenv
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    LLMTextFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport, parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner
from pydantic import BaseModel

from pipecat_wsclient.scenario.espeak import EspeakTTSService

load_dotenv(override=True)

ANSWER = "We are open from nine to five, Monday to Friday."
GREETING = "Hello, I am your teacher."
HEARD = "What are your opening hours?"


class FixedAnswerLLM(FrameProcessor):
    """Stand-in for ``GoogleLLMService``: one fixed sentence per context it is asked about.

    A context whose last message is the user's gets :data:`ANSWER`; any other
    (the greeting's developer message) gets :data:`GREETING`.
    """

    def __init__(self, api_key: str | None = None, **kwargs):
        super().__init__(**kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            messages = frame.context.get_messages()
            last = messages[-1] if messages else {}
            role = last.get("role") if isinstance(last, dict) else None
            await self.push_frame(LLMFullResponseStartFrame())
            await self.push_frame(LLMTextFrame(ANSWER if role == "user" else GREETING))
            await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)


class FixedTranscriptSTT(SegmentedSTTService):
    """Stand-in for ``DeepgramSTTService``: every VAD segment is heard as :data:`HEARD`."""

    def __init__(self, api_key: str | None = None, **kwargs):
        super().__init__(trailing_silence_secs=0, ttfs_p99_latency=0.1, **kwargs)

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        yield TranscriptionFrame(HEARD, "", time_now_iso8601(), finalized=True)


class CallInfo(BaseModel):
    """Caller details fetched from the Twilio REST API."""

    from_number: str | None = None
    to_number: str | None = None


async def get_call_info(call_sid: str | None) -> CallInfo | None:
    """Fetch call information from the Twilio REST API using aiohttp.

    Args:
        call_sid: The Twilio call SID (e.g. call_data.call_id), or None.

    Returns:
        A CallInfo with the caller's numbers, or None if it couldn't be fetched.
    """
    if not call_sid:
        return None

    account_sid = os.getenv("TWILIO_ACCOUNT_SID")
    auth_token = os.getenv("TWILIO_AUTH_TOKEN")

    if not account_sid or not auth_token:
        logger.warning("Missing Twilio credentials, cannot fetch call info")
        return None

    url = f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"

    try:
        # Use HTTP Basic Auth with aiohttp
        auth = aiohttp.BasicAuth(account_sid, auth_token)

        async with aiohttp.ClientSession() as session:
            async with session.get(url, auth=auth) as response:
                if response.status != 200:
                    error_text = await response.text()
                    logger.error(f"Twilio API error ({response.status}): {error_text}")
                    return None

                data = await response.json()

                return CallInfo(from_number=data.get("from"), to_number=data.get("to"))

    except Exception as e:
        logger.error(f"Error fetching call info from Twilio: {e}")
        return None


async def save_audio(audio: bytes, sample_rate: int, num_channels: int):
    if len(audio) > 0:
        filename = f"recording_{datetime.datetime.now().strftime('%Y%m%d_%H%M%S')}.wav"
        with io.BytesIO() as buffer:
            with wave.open(buffer, "wb") as wf:
                wf.setsampwidth(2)
                wf.setnchannels(num_channels)
                wf.setframerate(sample_rate)
                wf.writeframes(audio)
            async with aiofiles.open(filename, "wb") as file:
                await file.write(buffer.getvalue())
        logger.info(f"Merged audio saved to {filename}")
    else:
        logger.info("No audio data to save")


async def run_bot(transport: BaseTransport, runner_args: RunnerArguments, testing: bool):
    llm = FixedAnswerLLM(api_key=os.getenv("GOOGLE_API_KEY"))  # was GoogleLLMService

    stt = FixedTranscriptSTT(api_key=os.getenv("DEEPGRAM_API_KEY"))  # was DeepgramSTTService

    os.getenv("CARTESIA_API_KEY")  # was CartesiaTTSService(api_key=..., British Reading Lady)
    tts = EspeakTTSService(push_silence_after_stop=testing)

    context = LLMContext()
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
        ),
    )

    # NOTE: Watch out! This will save all the conversation in memory. You can
    # pass `buffer_size` to get periodic callbacks.
    audiobuffer = AudioBufferProcessor()

    pipeline = Pipeline(
        [
            transport.input(),  # Websocket input from client
            stt,  # Speech-To-Text
            user_aggregator,
            llm,  # LLM
            tts,  # Text-To-Speech
            transport.output(),  # Websocket output to client
            audiobuffer,  # Used to buffer the audio in the pipeline
            assistant_aggregator,
        ]
    )

    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000,
            audio_out_sample_rate=8000,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        idle_timeout_secs=runner_args.pipeline_idle_timeout_secs,
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):
        # Start recording.
        await audiobuffer.start_recording()
        # Kick off the conversation.
        context.add_message(
            {"role": "developer", "content": "Please introduce yourself to the user."}
        )
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):
        await worker.cancel()

    @audiobuffer.event_handler("on_audio_data")
    async def on_audio_data(buffer, audio, sample_rate, num_channels):
        await save_audio(audio, sample_rate, num_channels)

    # We use `handle_sigint=False` because `uvicorn` is controlling keyboard
    # interruptions. We use `force_gc=True` to force garbage collection after
    # the runner finishes running a task which could be useful for long running
    # applications with multiple clients connecting.
    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint, force_gc=True)

    await runner.add_workers(worker)
    await runner.run()


def offline_serializer(transport_type: str, call_data) -> FrameSerializer:
    """The serializer ``create_transport`` builds for the provider, with ``auto_hang_up=False``.

    The same constructor arguments as ``pipecat.runner.utils._create_telephony_transport``
    (the credentials still read from the environment, empty when unset), plus
    ``auto_hang_up=False`` where the serializer has one: no hang-up REST call,
    so no credentials needed. Exotel's has none (it makes no REST call).
    """
    if transport_type == "twilio":
        return TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            account_sid=os.getenv("TWILIO_ACCOUNT_SID", ""),
            auth_token=os.getenv("TWILIO_AUTH_TOKEN", ""),
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if transport_type == "telnyx":
        return TelnyxFrameSerializer(
            stream_id=call_data["stream_id"],
            call_control_id=call_data["call_id"],
            outbound_encoding=call_data["outbound_encoding"],
            inbound_encoding="PCMU",  # as create_transport: "Standard default"
            api_key=os.getenv("TELNYX_API_KEY", ""),
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if transport_type == "plivo":
        return PlivoFrameSerializer(
            stream_id=call_data["stream_id"],
            call_id=call_data["call_id"],
            auth_id=os.getenv("PLIVO_AUTH_ID", ""),
            auth_token=os.getenv("PLIVO_AUTH_TOKEN", ""),
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if transport_type == "exotel":
        return ExotelFrameSerializer(
            stream_sid=call_data["stream_id"], call_sid=call_data["call_id"]
        )
    raise ValueError(f"Unsupported telephony provider: {transport_type}")


async def create_offline_transport(runner_args, transport_params: dict) -> BaseTransport:
    """``create_transport`` for a telephony stream, with ``auto_hang_up=False`` (added).

    The steps ``pipecat.runner.utils.create_transport`` takes for a telephony
    websocket, plus the one setting it cannot take: no hang-up REST call, so
    no carrier credentials needed.
    """
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    runner_args.transport_type = transport_type
    runner_args.call_data = call_data
    params = transport_params[transport_type]()
    params.add_wav_header = False
    params.serializer = offline_serializer(transport_type, call_data)
    return FastAPIWebsocketTransport(websocket=runner_args.websocket, params=params)


def print_call_data(runner_args) -> None:
    """``RUNNER_BOT call_data {...}`` on stdout: the transport and the ids that reached the bot."""
    call_data = runner_args.call_data
    data = call_data.model_dump(by_alias=True) if call_data is not None else {}
    data["transport"] = getattr(runner_args, "transport_type", None)
    print(f"RUNNER_BOT call_data {json.dumps(data, default=str)}", flush=True)


async def bot(runner_args: RunnerArguments, testing: bool | None = False):
    """Main bot entry point compatible with Pipecat Cloud."""
    print(f"RUNNER_BOT connection {runner_args.session_id}", flush=True)  # added: for tests

    transport_params = {
        "twilio": lambda: FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
        ),
        # added: the telnyx, plivo and exotel examples' own entries (each has only its own)
        "telnyx": lambda: FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
        ),
        "plivo": lambda: FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
        ),
        "exotel": lambda: FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
        ),
    }

    # create_transport auto-detects the telephony provider, builds the matching
    # serializer (here the TwilioFrameSerializer, using TWILIO_ACCOUNT_SID /
    # TWILIO_AUTH_TOKEN), and sets add_wav_header=False, so the bot only supplies
    # the params it cares about.
    if os.getenv("RUNNER_BOT_CRASH") == "1":  # added: the example's own line, as is
        transport = await create_transport(runner_args, transport_params)
    else:  # added: the same steps with the hang-up REST call off (there is no real call)
        transport = await create_offline_transport(runner_args, transport_params)
    print_call_data(runner_args)  # added: for tests

    # Look up the caller via the Twilio REST API and personalize the bot.
    # The call_data is available via runner_args.call_data as a typed CallData model.
    call_data = runner_args.call_data
    twilio = runner_args.transport_type == "twilio"  # added: the lookup is Twilio's
    call_info = await get_call_info(call_data.call_id) if call_data and twilio else None
    if call_info:
        logger.info(f"Call from: {call_info.from_number} to: {call_info.to_number}")

    await run_bot(transport, runner_args, bool(testing))


if __name__ == "__main__":
    from pipecat.runner.run import main

    sys.stdout.reconfigure(line_buffering=True)  # added: the runner's banner reaches a pipe
    main()
