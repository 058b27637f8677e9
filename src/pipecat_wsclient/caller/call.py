#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One call to a WebSocket voice endpoint: play a clip, hear the answer, measure.

The caller (:class:`~pipecat_wsclient.caller.builder.Caller`) queues the clip
at its source as a TTS would; both directions are placed on a playback
timeline (:class:`Track`), from which come the recording, the plot and the
per-turn response latency (:func:`~pipecat_wsclient.caller.result.measure_call`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pipecat_wsclient.audio.activity import VoiceActivity
from pipecat_wsclient.audio.levels import WINDOW_SECS
from pipecat_wsclient.audio.track import Track
from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.builder import (
    HANG_UP_SECS,
    Caller,
    LineOptions,
    resolve_rate,
    tls_option,
)
from pipecat_wsclient.caller.microphone import MIC_LEAD_SECS, LineMicrophone
from pipecat_wsclient.caller.outcome import (
    EXIT_CARRIER_RULES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SILENT,
    carrier_rules_error,
)
from pipecat_wsclient.caller.result import CallResult, measure_call
from pipecat_wsclient.caller.webhook import explain_refusal, is_webhook, through_webhook
from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.protocols.carrier import Clear
from pipecat_wsclient.stats import WebsocketClientStats

__all__ = ["CallOptions", "CallResult", "Progress", "bundled_clip", "run_call", "tls_option"]


POLL_SECS = 0.02
"""How often the call looks at the clock and the microphone."""

GREETING_QUIET_SECS = 0.8
"""With ``wait_greeting``: the bot's quiet after speech that ends its greeting."""

GREETING_WAIT_SECS = 5.0
"""With ``wait_greeting``: silence from connect after which the bot has no greeting."""


def bundled_clip() -> Path:
    """The speech clip shipped with the package: two questions with a pause."""
    return Path(str(files("pipecat_wsclient.caller").joinpath("data/question.wav")))


@dataclass
class CallOptions(LineOptions):
    """What to call and how: the line's options (:class:`LineOptions`) and what to play.

    Parameters:
        play: WAV file to play (any rate/channels); the bundled clip if None.
        record: Where to write the stereo recording (left: sent, right: heard).
        plot: Where to write the PNG timeline.
        duration: Longest call in seconds; by default the clip plus ``listen``.
        listen: Seconds to keep listening after the clip has been played.
        audio: PCM at the call's rate to play instead of ``play`` (load tests).
        wait_greeting: Let a bot that greets finish before we speak: the clip
            starts once the bot has been quiet for ``GREETING_QUIET_SECS``
            after speaking, or after ``GREETING_WAIT_SECS`` of silence from
            connect (a bot with no greeting).
        strict: A completed call whose bot broke the carrier's rules fails
            (``EXIT_CARRIER_RULES``, 9); otherwise they are only reported.
    """

    play: Path | None = None
    record: Path | None = None
    plot: Path | None = None
    duration: float | None = None
    listen: float = 2.0
    audio: bytes | None = None
    wait_greeting: bool = False
    strict: bool = False


@dataclass
class Progress:
    """A live view of the call, for the progress display."""

    state: str = "connecting"
    elapsed: float = 0.0
    sent_secs: float = 0.0
    heard_secs: float = 0.0
    ping_rtt_ms: float | None = None
    reconnects: int = 0


async def _ended(caller: Caller, run: asyncio.Task, stop: asyncio.Event) -> None:
    """Wait for the call to end after our hang-up: cut it short on a stop or after a while.

    A hang-up plays out what is queued and waits for the bot to take the
    close; Ctrl-C (or SIGTERM) during that wait, or a wait longer than
    :data:`~pipecat_wsclient.caller.builder.HANG_UP_SECS`, cancels the
    pipeline (it closes within a second).
    """
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({run, stopping}, timeout=HANG_UP_SECS, return_when="FIRST_COMPLETED")
    finally:
        stopping.cancel()
    if not run.done():
        await caller.end(now=True)
    await run


@functools.cache
def _analysis_thread() -> ThreadPoolExecutor:
    """One thread for the calls' analysis: many would hold the event loop's GIL longer."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-analysis")


async def run_call(
    options: CallOptions,
    *,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> CallResult:
    """Make one call and measure it.

    The line is never silent: the line's microphone sends 20 ms frames from
    connect to hang-up, the clip and then silence, as a carrier does. The
    call ends ``listen`` seconds after the clip has gone out, or at
    ``duration`` seconds after connecting (mid-clip if need be), or when
    the bot hangs up.

    Args:
        options: What to call and how.
        stop: Set it to end the call early (Ctrl-C); the recording is still written.
        on_progress: Called about 4 times a second with a :class:`Progress`.

    Returns:
        The measurements; ``exit_code`` says whether the call completed.

    Raises:
        ValueError: For an invalid URI or an unreadable ``play`` file.
    """
    started = time.monotonic()
    if is_webhook(options.uri):
        try:
            options = await through_webhook(options)
        except ConnectionFailure as failure:
            return measure_call(
                uri=failure.uri, stats=WebsocketClientStats(), sent=Track(8000),
                heard=Track(8000), interruptions=[], reconnects=[], failures=[failure],
                started=started, end={"by": "network", "code": None, "reason": ""},
            )  # fmt: skip
    rate = resolve_rate(options.protocol, options.sample_rate)
    clip = (
        options.audio
        if options.audio is not None
        else read_wav(options.play or bundled_clip(), rate)
    )
    sent, heard = Track(rate), Track(rate)
    clears: list[float] = []
    progress = Progress()

    def on_state(state: str, _detail: str) -> None:
        if state == "reconnected":
            progress.reconnects += 1
            state = "connected"
        elif state == "reconnecting":
            state = f"reconnecting ({_detail.partition(' in ')[0]})"  # "attempt N"
        progress.state = state

    mic = LineMicrophone(rate)
    voiced = VoiceActivity(rate)

    def on_heard(at: float, pcm: bytes) -> None:
        voiced.add(pcm, heard.add(at, pcm))

    caller = Caller(
        options,
        on_heard=on_heard,
        on_sent=sent.add,
        sources=[mic],
        on_bot_event=lambda event, at: clears.append(at) if isinstance(event, Clear) else None,
        on_state=on_state,
    )
    transport = caller.transport
    stop = stop or asyncio.Event()
    run = await caller.start()

    async def until(deadline: float | None, done: Callable[[], bool] = lambda: False) -> None:
        """Wait for ``done()``, the deadline, a stop, a failure or the end of the call."""
        while not (done() or stop.is_set() or caller.failed.is_set() or run.done()):
            if deadline is not None and time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_SECS)

    def greeting_over(connected: float) -> bool:
        now = time.monotonic()
        if not voiced.starts:
            return now - connected >= GREETING_WAIT_SECS
        return now - max(voiced.starts[-1] + WINDOW_SECS, heard.end) >= GREETING_QUIET_SECS

    async def conduct() -> None:
        await caller.connected_or_failed(stop)
        if not caller.connected.is_set():
            return
        connected = time.monotonic()
        deadline = None if options.duration is None else connected + options.duration
        if options.wait_greeting:
            await until(deadline, lambda: greeting_over(connected))
        mic.enqueue(clip)
        await until(deadline, lambda: mic.queued_bytes == 0)
        # What the microphone handed on has left within its lead; then listen.
        out = time.monotonic() + MIC_LEAD_SECS + POLL_SECS
        listen_end = out + options.listen
        if deadline is not None:
            listen_end = min(listen_end, deadline)
        await until(listen_end)

    async def report() -> None:
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
        # Ctrl-C: stop now rather than play out what is queued; the
        # connection still closes with 1000.
        await caller.end(now=stop.is_set() and not caller.failures)
        await _ended(caller, run, stop)
        interrupted = stop.is_set() and not caller.failures
    finally:
        reporter.cancel()
    progress.state = "ended" if not caller.failures else "failed"
    if on_progress is not None:
        on_progress(progress)

    # The analysis takes a while for a long call: off the event loop, so the
    # other callers of a load run are not held up (a plot is drawn here).
    analyse = functools.partial(
        measure_call,
        uri=caller.uri,
        stats=transport.stats,
        sent=sent,
        heard=heard,
        interruptions=caller.interruptions,
        reconnects=caller.reconnects,
        failures=[explain_refusal(f, options) for f in caller.failures],
        started=started,
        record=options.record,
        plot=options.plot,
        clears=clears,
        end=caller.how_it_ended(),
        stop_silence=options.stop_silence,
    )
    if options.plot is None:
        result = await asyncio.get_running_loop().run_in_executor(_analysis_thread(), analyse)
    else:
        result = analyse()
    result.notes = list(options.notes)
    result.carrier_errors = caller.carrier_errors()
    if options.strict and result.carrier_errors and result.exit_code == EXIT_OK:
        result.exit_code = EXIT_CARRIER_RULES
        result.error = carrier_rules_error(result.carrier_errors)
    if interrupted and result.exit_code in (EXIT_OK, EXIT_SILENT):
        result.exit_code = EXIT_INTERRUPTED
        result.error = "interrupted"
    return result
