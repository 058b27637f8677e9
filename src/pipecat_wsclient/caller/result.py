#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a call measured: the exit codes, :class:`CallResult`, and how it is worked out.

:func:`measure_call` turns what a call recorded (both audio tracks, event
times, the transport's counters) into a :class:`CallResult`, and writes the
recording and the plot when asked. No I/O but those files.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.audio.track import Track, render_pair
from pipecat_wsclient.audio.turns import TurnUpdate, percentile, replay
from pipecat_wsclient.audio.wav import write_stereo
from pipecat_wsclient.caller.outcome import (
    EXIT_CODES,
    EXIT_LOST,
    EXIT_OK,
    EXIT_SILENT,
    SILENT_ERROR,
)
from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.stats import WebsocketClientStats


@dataclass
class CallResult:
    """What a call measured (``--json`` prints it as is). ``exit_code`` 0 means it completed.

    Times are milliseconds (``_ms``) or seconds (``_secs``); ``None`` where
    nothing was measured.
    """

    uri: str
    """The endpoint, credentials redacted."""
    exit_code: int = EXIT_OK
    """0 completed, 3-7 a failure (see :data:`EXIT_CODES`), 130 interrupted."""
    error: str | None = None
    """The one-line reason the call failed."""
    connect_ms: float | None = None
    """Time to open the WebSocket (handshake included)."""
    duration_secs: float = 0.0
    """The whole call, from start to the end of the pipeline."""
    sent_secs: float = 0.0
    """Audio sent."""
    heard_secs: float = 0.0
    """Audio received."""
    bytes_out: int = 0
    """Bytes of the messages sent."""
    bytes_in: int = 0
    """Bytes of the messages received."""
    pacing_rate: float | None = None
    """Audio sent over the time taken to send it (1.0: real time)."""
    turns: list[dict[str, float | None]] = field(default_factory=list)
    """Per turn: ``utterance_end_s``, ``answer_start_s``, ``latency_ms`` (from the end of
    our utterance to the first answer that began after it) and ``overlap_ms`` (the far
    end began speaking this long before our utterance ended; None if it waited)."""
    latency_p50_ms: float | None = None
    """Median response latency over the turns."""
    latency_p95_ms: float | None = None
    """95th percentile response latency over the turns."""
    reconnects: int = 0
    """Reconnections that completed."""
    interruptions: int = 0
    """Interruptions the far end's audio caused in our pipeline."""
    decode_errors: int = 0
    """Messages the serializer could not decode."""
    dropped_frames: int = 0
    """Outbound frames the transport dropped (see ``WebsocketClientStats``)."""
    ping_rtt_ms: float | None = None
    """The last keepalive round trip."""
    first_answer_ms: float | None = None
    """From the first audio sent to the first audio heard."""
    underruns: int = 0
    """Gaps of 20 ms or more inside answer audio."""
    greeting: dict[str, float] | None = None
    """The far end's speech before our first utterance (all of it if we never spoke):
    ``onset_s`` and ``end_s``; None if it did not speak first."""
    barge_ins: list[dict[str, float | None]] = field(default_factory=list)
    """Each time we talked over the far end: ``onset_s`` (our speech onset),
    ``barge_in_ms`` (until its audio stopped) and, with a carrier protocol,
    ``clear_ms`` (until its ``clear`` arrived)."""
    clears: int = 0
    """Carrier ``clear`` messages the far end sent."""
    end: dict[str, Any] = field(default_factory=dict)
    """How the call ended: ``by`` (``caller``: we hung up; ``bot``: the bot closed
    it, ``code`` 1000 being a normal hang-up; ``network``: it dropped without a
    close, or never opened), ``code`` and ``reason`` of the close."""
    notes: list[str] = field(default_factory=list)
    """What was done to reach the bot (its webhook's answer, a stream URL made dialable)."""
    carrier_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The carrier's rules the bot broke (a carrier's protocol only): per kind,
    ``count``, ``code`` (the carrier's own, where it documents one) and the
    first ``example`` (:mod:`pipecat_wsclient.protocols.rules`)."""
    markers: dict[str, list[float]] = field(default_factory=dict)
    """Event times in seconds from the start of the timeline, for the plot."""
    record: str | None = None
    """The stereo recording written, if any."""
    plot: str | None = None
    """The PNG timeline written, if any."""

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (for ``--json``)."""
        return asdict(self)


def measure_call(
    *,
    uri: str,
    stats: WebsocketClientStats,
    sent: Track,
    heard: Track,
    interruptions: list[float],
    reconnects: list[float],
    failures: list[ConnectionFailure],
    started: float,
    record: Path | None = None,
    plot: Path | None = None,
    clears: list[float] | None = None,
    end: dict[str, Any] | None = None,
    stop_silence: float = STOP_SILENCE_SECS,
) -> CallResult:
    """Work out a finished call's result; write its recording and plot if asked.

    Args:
        uri: The endpoint (redacted).
        stats: The transport's counters at the end of the call.
        sent: Our audio, placed at its playback times.
        heard: The far end's audio, placed at its playback times.
        interruptions: When each interruption reached our pipeline.
        reconnects: When each reconnection completed.
        failures: The connection failures reported, the last one decisive.
        started: When the call started (``time.monotonic()``).
        record: Where to write the stereo WAV (left sent, right heard).
        plot: Where to write the PNG timeline.
        clears: When each carrier ``clear`` arrived.
        end: How the call ended (``Caller.how_it_ended()``).
        stop_silence: The bot's pause that means it stopped talking.

    Returns:
        The result; ``exit_code`` from the last failure, if any, else 8
        (``EXIT_SILENT``) when it connected and heard nothing.
    """
    result = CallResult(uri=uri, end=dict(end or {}))
    if failures:
        failure = failures[-1]
        result.error = str(failure)
        result.exit_code = (
            EXIT_CODES.get(failure.kind, EXIT_LOST) if failure.during_connect else EXIT_LOST
        )
    elif stats.connect_time_secs is not None and stats.audio_secs_received == 0:
        result.exit_code, result.error = EXIT_SILENT, SILENT_ERROR
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
    clears = clears or []
    result.clears = len(clears)
    engine = replay(sent, heard, clears, stop_silence=stop_silence)
    result.underruns = engine.underruns
    if engine.origin is None:
        return result

    t0 = engine.origin  # the first chunk of either track
    latencies = [t.latency for t in engine.turns if t.latency is not None]
    result.turns = [_turn_dict(t, t0) for t in engine.turns]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    result.latency_p50_ms = None if p50 is None else p50 * 1e3
    result.latency_p95_ms = None if p95 is None else p95 * 1e3
    for b in engine.barge_ins:
        result.barge_ins.append(
            {
                "onset_s": round(b.onset - t0, 3),
                "barge_in_ms": round(b.reaction * 1e3, 1),
                "clear_ms": None if b.clear is None else round((b.clear - b.onset) * 1e3, 1),
            }
        )
    if engine.greeting is not None:
        result.greeting = {
            "onset_s": round(engine.greeting.onset - t0, 3),
            "end_s": round(engine.greeting.end - t0, 3),
        }
    result.markers = {
        "speech_end": [t.utterance_end - t0 for t in engine.turns],
        "first_response": [t.answer_start - t0 for t in engine.turns if t.answer_start],
        "interruption": [t - t0 for t in interruptions],
        "reconnect": [t - t0 for t in reconnects],
        "barge_in": [float(b["onset_s"] or 0.0) for b in result.barge_ins],
        "clear": [t - t0 for t in clears],
    }
    if record is None and plot is None:
        return result
    rate = sent.rate
    rendered = render_pair(sent, heard)
    assert rendered is not None  # the engine had audio
    _, left, right = rendered
    if record is not None:
        write_stereo(record, left, right, rate)
        result.record = str(record)
    if plot is not None:
        from pipecat_wsclient.caller.plot import plot_call

        plot_call(plot, left, right, rate, result.markers)
        result.plot = str(plot)
    return result


def _turn_dict(turn: TurnUpdate, t0: float) -> dict[str, float | None]:
    return {
        "utterance_end_s": round(turn.utterance_end - t0, 3),
        "answer_start_s": None if turn.answer_start is None else round(turn.answer_start - t0, 3),
        "latency_ms": None if turn.latency is None else round(turn.latency * 1e3, 1),
        "overlap_ms": None if turn.overlap is None else round(turn.overlap * 1e3, 1),
    }
