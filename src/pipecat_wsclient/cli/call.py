#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One call to a WebSocket voice endpoint: play a clip, hear the answer, measure.

The pipeline is ``transport.input() -> Heard -> transport.output() -> Sent``:
``Heard`` keeps what the far end sends (and does not pass it on, so nothing
echoes back), the clip is queued at the source, and ``Sent`` sits after the
output, which pushes each audio chunk downstream once it has been sent.
Both directions are placed on a playback timeline (:class:`Track`), from
which come the recording, the plot and the per-turn response latency.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient.cli.audio import (
    Track,
    Turn,
    count_underruns,
    float_to_pcm,
    percentile,
    read_wav,
    turns,
    write_wav,
)
from pipecat_wsclient.errors import ConnectionFailure, FailureKind
from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.protocols.exotel import ExotelCarrierSerializer
from pipecat_wsclient.protocols.plivo import PlivoCarrierSerializer
from pipecat_wsclient.protocols.raw import RawPCMSerializer
from pipecat_wsclient.protocols.telnyx import TelnyxCarrierSerializer
from pipecat_wsclient.protocols.twilio import TwilioCarrierSerializer
from pipecat_wsclient.protocols.vonage import VonageCarrierSerializer
from pipecat_wsclient.transport import WebsocketClientTransport

PROTOCOLS: dict[str, Callable[[int], FrameSerializer]] = {
    "pipecat": lambda rate: ProtobufFrameSerializer(),
    "raw": lambda rate: RawPCMSerializer(sample_rate=rate),
    "twilio": lambda rate: TwilioCarrierSerializer(),
    "telnyx": lambda rate: TelnyxCarrierSerializer(),
    "plivo": lambda rate: PlivoCarrierSerializer(),
    "exotel": lambda rate: ExotelCarrierSerializer(),
    "vonage": lambda rate: VonageCarrierSerializer(),
}
"""Serializers by protocol name; carrier protocols register here too."""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CODES = {
    FailureKind.REFUSED: 3,
    FailureKind.DNS: 3,
    FailureKind.NETWORK: 3,
    FailureKind.HTTP_STATUS: 4,
    FailureKind.HANDSHAKE: 4,
    FailureKind.TLS: 5,
    FailureKind.TIMEOUT: 6,
}
"""Exit code per failure; anything else that ends a call early (connection lost) is 7."""
EXIT_LOST = 7
EXIT_INTERRUPTED = 130
"""Ended by Ctrl-C (the recording is still written)."""


def bundled_clip() -> Path:
    """The speech clip shipped with the package: two questions with a pause."""
    return Path(str(files("pipecat_wsclient.cli").joinpath("data/question.wav")))


@dataclass
class CallOptions:
    """What to call and how.

    Parameters:
        uri: The WebSocket endpoint.
        protocol: A key of :data:`PROTOCOLS`.
        play: WAV file to play (any rate/channels); the bundled clip if None.
        record: Where to write the stereo recording (left: sent, right: heard).
        plot: Where to write the PNG timeline.
        duration: Longest call in seconds; by default the clip plus ``listen``.
        listen: Seconds to keep listening after the clip has been played.
        headers: Extra handshake headers.
        sample_rate: Pipeline sample rate.
        cafile: CA bundle to verify a ``wss://`` server with.
        insecure: Skip certificate verification.
        open_timeout: Seconds allowed for the connection.
        audio: PCM at ``sample_rate`` to play instead of ``play`` (load tests).
    """

    uri: str
    protocol: str = "pipecat"
    play: Path | None = None
    record: Path | None = None
    plot: Path | None = None
    duration: float | None = None
    listen: float = 2.0
    headers: dict[str, str] = field(default_factory=dict)
    sample_rate: int = 16000
    cafile: Path | None = None
    insecure: bool = False
    open_timeout: float = 5.0
    audio: bytes | None = None


@dataclass
class Progress:
    """A live view of the call, for the progress display."""

    state: str = "connecting"
    elapsed: float = 0.0
    sent_secs: float = 0.0
    heard_secs: float = 0.0
    ping_rtt_ms: float | None = None
    reconnects: int = 0


@dataclass
class CallResult:
    """What a call measured. ``exit_code`` 0 means it completed."""

    uri: str
    exit_code: int = EXIT_OK
    error: str | None = None
    connect_ms: float | None = None
    duration_secs: float = 0.0
    sent_secs: float = 0.0
    heard_secs: float = 0.0
    bytes_out: int = 0
    bytes_in: int = 0
    pacing_rate: float | None = None
    turns: list[dict[str, float | None]] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    reconnects: int = 0
    interruptions: int = 0
    decode_errors: int = 0
    dropped_frames: int = 0
    ping_rtt_ms: float | None = None
    first_answer_ms: float | None = None
    underruns: int = 0
    markers: dict[str, list[float]] = field(default_factory=dict)
    record: str | None = None
    plot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (for ``--json``)."""
        return asdict(self)


class Heard(FrameProcessor):
    """Keep the audio the far end sends (not passed on) and note interruptions."""

    def __init__(self, track: Track, interruptions: list[float]):
        super().__init__()
        self._track = track
        self._interruptions = interruptions

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Record inbound audio at its playback time; pass other frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._track.add(time.monotonic(), frame.audio)
            return
        if isinstance(frame, InterruptionFrame) and direction == FrameDirection.DOWNSTREAM:
            self._interruptions.append(time.monotonic())
        await self.push_frame(frame, direction)


class Sent(FrameProcessor):
    """After the output: each audio chunk arrives here once it has been sent."""

    def __init__(self, track: Track):
        super().__init__()
        self._track = track

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Record sent audio at its far-end playback time."""
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            self._track.add(time.monotonic(), frame.audio)
        else:
            await self.push_frame(frame, direction)


def _client_params(options: CallOptions) -> WebsocketClientParams:
    tls: ssl.SSLContext | bool | None = None
    if options.insecure:
        tls = False
    elif options.cafile is not None:
        tls = ssl.create_default_context(cafile=str(options.cafile))
    return WebsocketClientParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        add_wav_header=False,
        audio_out_end_silence_secs=0,
        # Each chunk to Sent as it goes out: the recording and the latency
        # figures place our audio by when it was sent.
        audio_out_downstream_secs=0,
        additional_headers=options.headers or None,
        serializer=PROTOCOLS[options.protocol](options.sample_rate),
        open_timeout=options.open_timeout,
        ssl=tls,
    )


async def run_call(
    options: CallOptions,
    *,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> CallResult:
    """Make one call and measure it.

    Args:
        options: What to call and how.
        stop: Set it to end the call early (Ctrl-C); the recording is still written.
        on_progress: Called about 4 times a second with a :class:`Progress`.

    Returns:
        The measurements; ``exit_code`` says whether the call completed.

    Raises:
        ValueError: For an invalid URI or an unreadable ``play`` file.
    """
    rate = options.sample_rate
    clip = (
        options.audio
        if options.audio is not None
        else read_wav(options.play or bundled_clip(), rate)
    )
    transport = WebsocketClientTransport(options.uri, _client_params(options))
    sent, heard = Track(rate), Track(rate)
    interruptions: list[float] = []
    reconnects: list[float] = []
    failures: list[ConnectionFailure] = []
    connected, failed = asyncio.Event(), asyncio.Event()
    stop = stop or asyncio.Event()
    progress = Progress()

    worker = PipelineWorker(
        Pipeline([transport.input(), Heard(heard, interruptions), transport.output(), Sent(sent)]),
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    @transport.event_handler("on_connected")
    async def on_connected(_transport, _websocket):
        progress.state = "connected"
        connected.set()

    @transport.event_handler("on_connection_error")
    async def on_connection_error(_transport, error):
        failures.append(error)
        progress.state = "failed"
        failed.set()

    @transport.event_handler("on_reconnecting")
    async def on_reconnecting(_transport, attempt, delay, cause):
        progress.state = f"reconnecting (attempt {attempt})"

    @transport.event_handler("on_reconnected")
    async def on_reconnected(_transport, attempt, downtime):
        reconnects.append(time.monotonic())
        progress.reconnects += 1
        progress.state = "connected"

    started = time.monotonic()
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())

    interrupted = False

    async def conduct():
        nonlocal interrupted
        waits = [asyncio.create_task(e.wait()) for e in (stop, failed, connected)]
        try:
            await asyncio.wait([*waits, run], return_when=asyncio.FIRST_COMPLETED)
            if connected.is_set() and not (stop.is_set() or failed.is_set()):
                # As a TTS does: the stop sends the clip's last partial chunk
                # (padded) now, not at EndFrame, long after it ended.
                await worker.queue_frames([TTSAudioRawFrame(clip, rate, 1), TTSStoppedFrame()])
                clip_secs = len(clip) / (2 * rate)
                limit = options.duration or clip_secs + options.listen + 0.2
                await asyncio.wait(
                    [*waits[:2], run], timeout=limit, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            for task in waits:
                task.cancel()
        interrupted = stop.is_set() and not failures
        if run.done():
            return
        if interrupted:
            # Ctrl-C: stop now rather than play out the queued clip; the
            # connection still closes with 1000.
            await worker.cancel()
        else:
            await worker.queue_frame(EndFrame())

    async def report():
        while not run.done():
            stats = transport.stats
            progress.elapsed = time.monotonic() - started
            progress.sent_secs = stats.audio_secs_sent
            progress.heard_secs = stats.audio_secs_received
            progress.ping_rtt_ms = (
                None if stats.ping_rtt_secs is None else stats.ping_rtt_secs * 1e3
            )
            if on_progress is not None:
                on_progress(progress)
            await asyncio.sleep(0.25)

    reporter = asyncio.create_task(report())
    try:
        await conduct()
        await asyncio.wait_for(asyncio.shield(run), 15)
    except TimeoutError:
        await worker.cancel()
        await run
    finally:
        reporter.cancel()
    progress.state = "ended" if not failures else "failed"
    if on_progress is not None:
        on_progress(progress)

    result = _result(options, transport, sent, heard, interruptions, reconnects, failures, started)
    if interrupted and result.exit_code == EXIT_OK:
        result.exit_code = EXIT_INTERRUPTED
        result.error = "interrupted"
    return result


def _result(
    options: CallOptions,
    transport: WebsocketClientTransport,
    sent: Track,
    heard: Track,
    interruptions: list[float],
    reconnects: list[float],
    failures: list[ConnectionFailure],
    started: float,
) -> CallResult:
    stats = transport.stats
    result = CallResult(uri=transport.session.uri)
    if failures:
        failure = failures[-1]
        result.error = str(failure)
        result.exit_code = (
            EXIT_CODES.get(failure.kind, EXIT_LOST) if failure.during_connect else EXIT_LOST
        )
    result.connect_ms = None if stats.connect_time_secs is None else stats.connect_time_secs * 1e3
    result.duration_secs = time.monotonic() - started
    result.sent_secs = stats.audio_secs_sent
    result.heard_secs = stats.audio_secs_received
    result.bytes_out, result.bytes_in = stats.bytes_out, stats.bytes_in
    result.reconnects = len(reconnects)
    result.interruptions = len(interruptions)
    result.decode_errors = stats.decode_errors
    result.dropped_frames = stats.dropped_frames
    result.ping_rtt_ms = None if stats.ping_rtt_secs is None else stats.ping_rtt_secs * 1e3
    if len(sent.arrivals) > 1:
        # Audio sent before the last chunk, over the time it took to send it.
        span = sent.arrivals[-1] - sent.arrivals[0]
        before_last = sum(len(pcm) for _, pcm in sent.chunks[:-1]) / (2 * sent.rate)
        result.pacing_rate = before_last / span if span > 0 else None
    if heard.arrivals and sent.arrivals:
        result.first_answer_ms = (heard.arrivals[0] - sent.arrivals[0]) * 1e3
    result.underruns = count_underruns(heard)
    if not sent.chunks and not heard.chunks:
        return result

    t0 = min(track.chunks[0][0] for track in (sent, heard) if track.chunks)
    end = max(sent.end, heard.end)
    rate = options.sample_rate
    left, right = sent.render(t0, end - t0), heard.render(t0, end - t0)
    call_turns = turns(left, right, rate, t0)
    latencies = [t.latency for t in call_turns if t.latency is not None]
    result.turns = [_turn_dict(t, t0) for t in call_turns]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    result.latency_p50_ms = None if p50 is None else p50 * 1e3
    result.latency_p95_ms = None if p95 is None else p95 * 1e3
    result.markers = {
        "speech_end": [t.utterance_end - t0 for t in call_turns],
        "first_response": [t.answer_start - t0 for t in call_turns if t.answer_start],
        "interruption": [t - t0 for t in interruptions],
        "reconnect": [t - t0 for t in reconnects],
    }
    if options.record is not None:
        stereo = np.stack([left, right], axis=1).reshape(-1)
        write_wav(options.record, float_to_pcm(stereo), rate, channels=2)
        result.record = str(options.record)
    if options.plot is not None:
        from pipecat_wsclient.cli.plot import plot_call

        plot_call(options.plot, left, right, rate, result.markers)
        result.plot = str(options.plot)
    return result


def _turn_dict(turn: Turn, t0: float) -> dict[str, float | None]:
    return {
        "utterance_end_s": round(turn.utterance_end - t0, 3),
        "answer_start_s": None if turn.answer_start is None else round(turn.answer_start - t0, 3),
        "latency_ms": None if turn.latency is None else round(turn.latency * 1e3, 1),
    }
