#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The one builder of a caller: its transport, its pipeline and its connection events.

Every front end (``call``, ``load``, ``test``, the browser phone, Locust) dials
a bot through a :class:`Caller`, built from :class:`LineOptions` with one set
of defaults. The pipeline is::

    transport.input() -> Listener -> *sources -> transport.output() -> SentTap

- the ``Listener`` hands the bot's audio to ``on_heard`` (not passed on, so
  nothing echoes back) and notes interruptions without passing them on: the
  bot's interruption must never cut the caller's own speech short;
- the sources (a clip queued at the start, a scripted microphone, the page's
  microphone) push what the caller says;
- the ``SentTap`` hands each chunk to ``on_sent`` with the time it was sent.

What a front end needs differently is a named parameter of :class:`Caller`
that says why, not a copy of this module.

Example::

    caller = Caller(LineOptions("ws://127.0.0.1:8765/ws", protocol="twilio"),
                    on_heard=heard.add, on_sent=sent.add)
    run = await caller.start()
    await caller.connected_or_failed()
    ...
    await caller.hang_up()
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient import ConnectionFailure, WebsocketClientParams, WebsocketClientTransport
from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.caller.hygiene import printable
from pipecat_wsclient.caller.microphone import FRAME_SECS as LINE_FRAME_SECS
from pipecat_wsclient.caller.taps import Listener, OnAudio, SentTap
from pipecat_wsclient.errors import redact_uri
from pipecat_wsclient.protocols.carrier import CarrierSerializer, Clear, Mark
from pipecat_wsclient.protocols.registry import make_serializer
from pipecat_wsclient.protocols.webhook import WEBHOOK_CARRIERS

DEFAULT_RATE = 16000
"""The pipeline's rate for ``pipecat`` and ``raw`` when none is given."""

HANG_UP_SECS = 15.0
"""How long the pipeline has to end after a hang-up before it is cancelled."""

OnState = Callable[[str, str], object]
"""Called with a state (``connected``, ``failed``, ``reconnecting``, ``reconnected``), a detail."""


@dataclass
class LineOptions:
    """Whom a caller dials and how: the options every front end shares.

    Parameters:
        uri: The bot's WebSocket endpoint.
        protocol: A protocol of the registry (:mod:`pipecat_wsclient.protocols.registry`).
        sample_rate: The pipeline's rate. None: a carrier's own rate (8 kHz;
            Vonage 16 kHz), so that no resampler delays what the caller hears
            and says; 16 kHz for ``pipecat`` and ``raw``.
        headers: Extra handshake headers.
        carrier: The carrier serializer's ids and options (``--carrier K=V``).
        params: The call's custom parameters (``--param K=V``).
        cafile: CA bundle to verify a ``wss://`` server with.
        insecure: Skip certificate verification.
        open_timeout: Seconds allowed for the connection.
        reconnect: Redial a lost connection (the transport's reconnect policy).
            Off by default: a carrier never redials a media stream, and a bot
            that drops the call has failed it (exit 7), which a redial would
            paper over. On, it exercises the transport's reconnection
            against ``pipecat`` or ``raw`` peers (``--reconnect``).
        stop_silence: The turn rules' pause of the bot that means it stopped
            talking (``--stop-silence-ms``; see
            :data:`~pipecat_wsclient.audio.levels.STOP_SILENCE_SECS`).
        auth_token: The carrier account's auth token, to sign the webhook
            and the WebSocket upgrade as the carrier does (``--auth-token``;
            None: the carrier's environment variable, e.g. ``TWILIO_AUTH_TOKEN``).
        notes: What was done to reach the bot (the webhook's answer, a
            stream URL made dialable here), for the report.
    """

    uri: str
    protocol: str = "pipecat"
    sample_rate: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    carrier: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    cafile: Path | None = None
    insecure: bool = False
    open_timeout: float = 5.0
    reconnect: bool = False
    stop_silence: float = STOP_SILENCE_SECS
    auth_token: str | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    def build_serializer(self) -> tuple[FrameSerializer, int]:
        """A new serializer for one call, and the pipeline's rate for it.

        Raises:
            ValueError: For an unknown protocol or a wrong ``--carrier``/``--param``.
        """
        serializer = make_serializer(
            self.protocol,
            self.sample_rate or DEFAULT_RATE,
            carrier=self.carrier,
            params=self.params,
        )
        return serializer, self.sample_rate or line_rate(serializer)


def check_uri(uri: str, protocol: str | None = None) -> None:
    """Fail now, before dialing, if ``uri`` is not one a caller can dial.

    Args:
        uri: A stream's ``ws://``/``wss://`` URI or, with a carrier's
            ``protocol`` that has one, the bot's webhook (``http(s)://``).
        protocol: The ``--protocol`` it is dialed with (None: a stream's URI only).

    Raises:
        ValueError: Naming the URI (redacted) and why, in one line; also for a
            space or control character in it (``urlsplit`` would drop a CR or
            LF silently and dial another URI than the one given).
    """
    bad = next((c for c in uri if c <= " " or "\x7f" <= c <= "\x9f"), None)
    if bad is not None:
        raise ValueError(
            f"{printable(redact_uri(uri))}: a URI holds no space or control character "
            f"(found {printable(bad) if bad != ' ' else 'a space'})"
        )
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError as e:
        raise ValueError(f"{redact_uri(uri)}: not a valid URI ({e})") from None
    webhook = parts.scheme in ("http", "https")
    if webhook and protocol not in WEBHOOK_CARRIERS:
        hint = f"--protocol {protocol} has no webhook" if protocol else "no --protocol given"
        raise ValueError(
            f"{redact_uri(uri)}: not a WebSocket URI; an http(s):// webhook is dialed with "
            f"a carrier's --protocol ({', '.join(WEBHOOK_CARRIERS)}), {hint}"
        )
    if not webhook and parts.scheme not in ("ws", "wss"):
        raise ValueError(
            f"{redact_uri(uri)}: not a WebSocket URI (a caller dials ws:// or wss://, or a "
            "carrier bot's http(s):// webhook with its --protocol)"
        )
    if not host:
        raise ValueError(f"{redact_uri(uri)}: no host")


def line_rate(serializer: FrameSerializer) -> int:
    """The rate a caller runs at when none is given: a carrier's own, else 16 kHz."""
    return serializer.carrier_rate if isinstance(serializer, CarrierSerializer) else DEFAULT_RATE


def resolve_rate(protocol: str, sample_rate: int | None) -> int:
    """The pipeline's rate for a protocol: ``sample_rate``, else the carrier's own, else 16 kHz.

    Raises:
        ValueError: For an unknown protocol.
    """
    return sample_rate or LineOptions("", protocol=protocol).build_serializer()[1]


def tls_option(cafile: Path | None, insecure: bool) -> ssl.SSLContext | bool | None:
    """The transport's ``ssl`` param for ``--cafile`` and ``--insecure``.

    Returns:
        A context trusting the CA bundle, False to skip verification, or None
        for the system's defaults.
    """
    if insecure:
        return False
    return None if cafile is None else ssl.create_default_context(cafile=str(cafile))


class Caller:
    """A caller's transport and pipeline, and what its connection did.

    Attributes:
        transport: The client transport.
        worker: The pipeline's worker (queue frames to it).
        rate: The pipeline's sample rate.
        failures: Connection failures reported, the last one decisive.
        reconnects: When each reconnection completed.
        interruptions: When each interruption reached the caller's pipeline.
        connected_at: When the first connection opened (None: not yet).
        serializer: The call's serializer (a carrier's counts the rules the bot broke).
    """

    def __init__(
        self,
        line: LineOptions,
        *,
        on_heard: OnAudio,
        on_sent: OnAudio,
        sources: Sequence[FrameProcessor] = (),
        on_bot_event: Callable[[Mark | Clear, float], None] | None = None,
        on_state: OnState | None = None,
        live_sent_audio: bool = False,
        out_chunk_secs: float = LINE_FRAME_SECS,
    ):
        """Build the caller; nothing is dialed until :meth:`start`.

        Args:
            line: Whom to dial and how.
            on_heard: Gets the bot's audio as it arrives.
            on_sent: Gets each chunk of ours with the time it was sent.
            sources: Processors that push what the caller says (between the
                listener and the output).
            on_bot_event: Gets a carrier's marks and clears with their times.
            on_state: Gets the connection's state changes, for a live view.
            live_sent_audio: Hand each sent chunk to ``on_sent`` as it goes
                out (the phone's live view, the scenario's barge-in timing,
                which counts what is in flight). Off, the output gathers
                about 0.1 s per frame downstream, which costs a load run's
                event loop less; the send times are exact either way.
            out_chunk_secs: The size of the chunks the output sends: a
                carrier's 20 ms frame by default, the cadence of a phone line
                (Pipecat's own default, 40 ms, would hold every other frame
                of a microphone that sends 20 ms at a time).

        Raises:
            ValueError: For an unknown protocol or a wrong ``--carrier``/``--param``.
        """
        serializer, self.rate = line.build_serializer()
        self.serializer = serializer
        if isinstance(serializer, CarrierSerializer) and on_bot_event is not None:
            serializer.on_bot_event = on_bot_event
        self._on_state = on_state
        self.failures: list[ConnectionFailure] = []
        self.reconnects: list[float] = []
        self.interruptions: list[float] = []
        self.connected_at: float | None = None
        self.ended_by_us = False
        """Whether we ended the call (a hang-up, the end of the script, Ctrl-C)."""
        self.close_code: int | None = None
        self.close_reason = ""
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        params = WebsocketClientParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            # The caller's audio ends where its speech ends: no silence
            # added at the end, which would count as audio sent.
            audio_out_end_silence_secs=0,
            # A carrier sends each frame as it is captured, in real time: sent
            # ahead, the caller's speech would end at the bot before it ends
            # on our timeline, and every response would read short.
            audio_out_send_lead_secs=0,
            audio_out_downstream_secs=0 if live_sent_audio else 0.1,
            audio_out_10ms_chunks=round(out_chunk_secs * 100),
            additional_headers=line.headers or None,
            serializer=serializer,
            open_timeout=line.open_timeout,
            ssl=tls_option(line.cafile, line.insecure),
        )
        if not line.reconnect:
            params.reconnect = None
        self.transport = WebsocketClientTransport(line.uri, params)
        self.worker = PipelineWorker(
            Pipeline(
                [
                    self.transport.input(),
                    Listener(on_heard, self.interruptions.append),
                    *sources,
                    self.transport.output(),
                    SentTap(on_sent),
                ]
            ),
            params=PipelineParams(audio_in_sample_rate=self.rate, audio_out_sample_rate=self.rate),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        self._run: asyncio.Task | None = None
        self._register_handlers()

    @property
    def uri(self) -> str:
        """The endpoint, credentials redacted."""
        return self.transport.session.uri

    @property
    def run_task(self) -> asyncio.Task | None:
        """The pipeline's task (None before :meth:`start`); done when the call is over."""
        return self._run

    @property
    def ended(self) -> bool:
        """Whether the call is over (hung up by either side, or lost)."""
        return self._run is not None and self._run.done()

    def _state(self, state: str, detail: str) -> None:
        if self._on_state is not None:
            self._on_state(state, detail)

    def _register_handlers(self) -> None:
        @self.transport.event_handler("on_connected")
        async def on_connected(_transport, _websocket):
            if self.connected_at is None:
                self.connected_at = time.monotonic()
            self.connected.set()
            self._state("connected", f"connected to {self.uri}")

        @self.transport.event_handler("on_disconnected")
        async def on_disconnected(_transport, websocket):
            self.close_code = getattr(websocket, "close_code", None)
            self.close_reason = getattr(websocket, "close_reason", None) or ""

        @self.transport.event_handler("on_connection_error")
        async def on_connection_error(_transport, error: ConnectionFailure):
            self.failures.append(error)
            self.failed.set()
            self._state("failed", str(error))

        @self.transport.event_handler("on_reconnecting")
        async def on_reconnecting(_transport, attempt, delay, cause):
            self._state("reconnecting", f"attempt {attempt} in {delay:.1f} s: {cause}")

        @self.transport.event_handler("on_reconnected")
        async def on_reconnected(_transport, attempt, downtime):
            self.reconnects.append(time.monotonic())
            self._state("reconnected", f"reconnected after {downtime:.1f} s (attempt {attempt})")

    async def start(self) -> asyncio.Task:
        """Run the pipeline (it dials); return its task."""
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        return self._run

    async def connected_or_failed(self, *also: asyncio.Event) -> None:
        """Wait until connected, failed, the pipeline ended, or one of ``also`` is set."""
        assert self._run is not None, "start() first"
        waits = [asyncio.create_task(e.wait()) for e in (self.connected, self.failed, *also)]
        try:
            await asyncio.wait([*waits, self._run], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def end(self, *, now: bool = False) -> None:
        """End the call from our side without waiting: the protocol's goodbye, then a close.

        Args:
            now: Cancel the pipeline (Ctrl-C) instead of letting what is
                queued go out first; the connection still closes with 1000.
        """
        if self._run is None or self._run.done():
            return
        self.ended_by_us = True
        if now:
            await self.worker.cancel()
        else:
            await self.worker.queue_frame(EndFrame())

    def carrier_errors(self) -> dict[str, dict[str, object]]:
        """The carrier's rules the bot broke: per kind, ``count``, ``code`` and ``example``."""
        if isinstance(self.serializer, CarrierSerializer):
            return self.serializer.violations.as_dict()
        return {}

    def how_it_ended(self) -> dict[str, object]:
        """How the call ended: ``by`` (``caller``, ``bot`` or ``network``), ``code``, ``reason``.

        ``bot`` is a close the bot sent (any code); ``network`` a connection
        that ended without a close frame (1006) or never opened.
        """
        failure = self.failures[-1] if self.failures else None
        code = failure.close_code if failure is not None else self.close_code
        reason = failure.close_reason if failure is not None else self.close_reason
        if self.ended_by_us and failure is None:
            by = "caller"
        elif code is None or code == 1006:
            by = "network"
        else:
            by = "bot"
        return {"by": by, "code": code, "reason": reason or ""}

    async def hang_up(self, timeout: float = HANG_UP_SECS) -> None:
        """End the call from our side (the protocol's goodbye, then a normal close).

        Waits up to ``timeout`` for the pipeline to end, then cancels it.
        """
        if self._run is None:
            return
        if not self._run.done():
            await self.end()
            try:
                await asyncio.wait_for(asyncio.shield(self._run), timeout)
            except TimeoutError:
                await self.worker.cancel()
        await asyncio.gather(self._run, return_exceptions=True)
