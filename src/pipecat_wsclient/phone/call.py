#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One call from the browser phone: the page's microphone to the bot, the bot to its speaker.

The pipeline is ``transport.input() -> tap -> PageMic -> transport.output() -> tap``,
with our transport in the carrier's role:

- the first tap gets the bot's audio when the carrier would play it (the
  serializer's playback clock: a ``clear`` drops what has not played yet) and
  posts it to the page, which plays it at once;
- ``PageMic`` pushes the PCM the page captured, 20 ms at a time as it comes,
  never faster than real time: the page sends all the time (zeros when
  muted), as a phone line does; a page that sends faster has its oldest audio
  beyond :data:`~.limits.PAGE_MIC_SECS` dropped (counted, logged once), so the
  bot never gets a backlog, during the call or after it;
- the tap after the output places each chunk at the time it went out.

Both sides go on the timelines that ``call`` keeps (:class:`Track`), from
which come the live turns (:class:`~pipecat_wsclient.audio.turns.LiveTurns`),
and at the end the same result, recording and timeline PNG as ``call``,
worked out in a thread of their own (a call being stopped does not wait for a
long call's plot; see :meth:`PhoneCall.stop`).

An ``http(s)://`` URI with a carrier's protocol is the bot's webhook: each
call asks it for the stream first, as the carrier does, with fresh ids
(:func:`~pipecat_wsclient.caller.webhook.through_webhook`); what was done goes
to the page's log, and the carrier's rules the bot broke to its summary.

The page talks JSON to us (``dtmf``, ``mute``, ``hangup``, ``voice``) and
binary PCM; we send it JSON (``state``, ``turn``, ``barge_in``, ``event``,
``stats``, ``ended``) and binary PCM. ``docs/phone.md`` has the whole protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    OutputAudioRawFrame,
    OutputDTMFUrgentFrame,
)

from pipecat_wsclient.audio.activity import VoiceOnsets
from pipecat_wsclient.audio.track import Track, render_pair
from pipecat_wsclient.audio.turns import BargeIn, LiveTurns, TurnUpdate
from pipecat_wsclient.audio.wav import write_stereo
from pipecat_wsclient.caller.builder import Caller, LineOptions
from pipecat_wsclient.caller.microphone import MIC_LEAD_SECS
from pipecat_wsclient.caller.result import CallResult, measure_call
from pipecat_wsclient.caller.taps import SourceTask
from pipecat_wsclient.caller.webhook import (
    as_stream_uri,
    explain_refusal,
    is_webhook,
    through_webhook,
)
from pipecat_wsclient.errors import ConnectionFailure, redact_uri
from pipecat_wsclient.pacing import PaceClock
from pipecat_wsclient.phone.limits import (
    PAGE_MIC_SECS,
    REPORTED_BAD_MESSAGES,
    DropOldest,
    Reported,
)
from pipecat_wsclient.protocols.carrier import Clear, Mark

STATS_SECS = 0.5
"""How often the page gets counters and what the live turns found."""

HANGUP_SECS = 15.0
"""How long the pipeline has to end after a hang-up before it is cancelled."""

MAX_CHUNK_SECS = 1.0
"""The longest microphone chunk the page may send in one message."""

PAGE_LATE_SECS = 0.1
"""How late the page's audio may run before its pacing restarts (a pause, not a backlog)."""


@dataclass
class PhoneOptions(LineOptions):
    """What the phone dials and how: the options of ``call``, a carrier by default.

    Parameters:
        protocol: A protocol of the registry; Twilio's by default. With a
            carrier's, ``uri`` may be the bot's ``http(s)://`` webhook.
    """

    protocol: str = "twilio"


Post = Callable[[str | bytes], None]
"""Hands a message to the page's sender; never blocks (see ``phone.link``)."""


class Kept(NamedTuple):
    """A file of the call, kept: where the page downloads it, where it is."""

    url: str
    path: Path


Keep = Callable[[str, Path], Kept]
"""Keeps a file of the call (its name, where it was made)."""

T = TypeVar("T")


class _PageMic(SourceTask):
    """The page's microphone: each chunk it sends goes out as it comes, at most in real time.

    What the page sends ahead of real time waits here, up to
    :data:`PAGE_MIC_SECS`; beyond that the oldest is dropped (``dropped_bytes``),
    so neither memory nor the bot's backlog grows with a page that floods.
    """

    task_name = "page-mic"

    def __init__(self) -> None:
        super().__init__()
        self.rate = 0
        self._chunks = DropOldest(0)
        self._ready = asyncio.Event()
        self._warned = False
        self.muted = False

    def set_rate(self, rate: int) -> None:
        """Set the pipeline's rate (16-bit mono PCM), before the first chunk."""
        self.rate = rate
        self._chunks.limit = int(2 * rate * PAGE_MIC_SECS)

    @property
    def dropped_bytes(self) -> int:
        """The page's audio dropped because it came faster than real time."""
        return self._chunks.dropped

    def feed(self, pcm: bytes) -> None:
        """Queue a chunk of the page's PCM (zeros instead while muted)."""
        if self._chunks.put(bytes(len(pcm)) if self.muted else pcm) and not self._warned:
            self._warned = True
            logger.warning(
                "phone: the page sends audio faster than real time; "
                f"dropping its oldest beyond {PAGE_MIC_SECS:g} s"
            )
        self._ready.set()

    async def cleanup(self) -> None:
        """Stop pushing, also when the pipeline was cancelled before a ``CancelFrame`` got here."""
        await super().cleanup()
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None

    def discard(self) -> None:
        """Let go of what waits (the call is ending: it is not said)."""
        self._chunks.clear()

    async def produce(self) -> None:
        """Push each chunk the page sent, in order, on a real-time schedule."""
        clock = PaceClock(lead_secs=MIC_LEAD_SECS, max_lag_secs=PAGE_LATE_SECS)
        loop = asyncio.get_running_loop()
        while True:
            pcm = self._chunks.get()
            if pcm is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            delay = clock.delay(loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            clock.sent(len(pcm) / (2 * self.rate))
            await self.push_frame(OutputAudioRawFrame(pcm, self.rate, 1))


class PageError(ValueError):
    """A message from the page that breaks the protocol (named in the error)."""


class PhoneCall:
    """One call: the page's audio and keys to the bot, the bot's audio and events to the page.

    Example::

        call = PhoneCall(options, post=page.post, keep=files.keep)
        result = await call.run(page_messages)   # until a hang-up on either side
    """

    def __init__(self, options: PhoneOptions, *, post: Post, keep: Keep):
        """Set up the call; nothing is dialed until :meth:`run`.

        Args:
            options: What to dial and how.
            post: Sends a message to the page without blocking.
            keep: Keeps the recording and the timeline PNG once made (in a
                private temporary folder, removed after): given the file's name
                and where it is, returns where it was kept and its URL path.

        Raises:
            ValueError: For an unknown protocol or a wrong ``--carrier``/``--param``.
        """
        self._post = post
        self._keep = keep
        self._options = options
        self.mic = _PageMic()
        # A webhook's stream is known once asked (run()): until then the line
        # stands ready for the webhook's host.
        webhook = is_webhook(options.uri)
        self._use(replace(options, uri=as_stream_uri(options.uri)) if webhook else options)
        self.rate = rate = self.caller.rate
        self.mic.set_rate(rate)
        self.sent, self.heard = Track(rate), Track(rate)
        self.live = LiveTurns(rate, stop_silence=options.stop_silence)
        self.clears: list[float] = []
        self.page_voice_onsets: list[float] = []
        """The page's ``voice`` messages: when it captured the start of speech (epoch s)."""
        self.server_voice_onsets: list[float] = []
        """When the chunks with those onsets arrived here from the page (epoch s)."""
        self.sent_voice_onsets: list[float] = []
        """When our transport had sent them to the bot (epoch s)."""
        self._arrived_onsets = VoiceOnsets(rate)
        self._sent_onsets = VoiceOnsets(rate)
        self._bad_messages = Reported(REPORTED_BAD_MESSAGES)
        self.hung_up_by_page = False
        self.t0 = time.monotonic()
        self._ended = asyncio.Event()
        self._stopping = asyncio.Event()
        self._finish_by: float | None = None

    def _use(self, line: PhoneOptions) -> None:
        """Dial ``line``: a caller for it, and its parts as the call's attributes."""
        self._line = line
        self.caller = Caller(
            line,
            on_heard=self._heard_audio,
            on_sent=self._sent_audio,
            sources=[self.mic],
            on_bot_event=self._bot_event,
            on_state=self._connection_state,
            # The page's live view shows each chunk as it goes out.
            live_sent_audio=True,
            # The page sends 20 ms at a time: send each as it comes, not in
            # Pipecat's default 40 ms chunks (which would hold every other one).
            out_chunk_secs=0.02,
        )
        self.transport = self.caller.transport
        self.failures = self.caller.failures
        self.reconnects = self.caller.reconnects
        self._worker = self.caller.worker

    @property
    def page_audio_dropped_secs(self) -> float:
        """The page's audio not sent to the bot because it came faster than real time."""
        return self.mic.dropped_bytes / (2 * self.rate)

    def stop(self, within: float) -> None:
        """End the call now (the phone is stopping): cancel, don't drain; finish in ``within`` s.

        The pipeline is cancelled rather than let what is queued go out; the
        recording is written if that fits in the time, then the result (and
        the timeline PNG) if that fits too. :meth:`run` returns either way.
        """
        self._finish_by = time.monotonic() + within
        self._stopping.set()

    # -- to the page ----------------------------------------------------------

    def _send(self, message_type: str, /, **fields: Any) -> None:
        self._post(json.dumps({"type": message_type, **fields}))

    def _event(self, kind: str, detail: str, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self._send("event", kind=kind, detail=detail, at_s=round(at - self.t0, 3))

    def _state(self, state: str, detail: str = "") -> None:
        self._send("state", state=state, detail=detail)

    # -- timelines (called by the processors and the serializer) ---------------

    def _heard_audio(self, now: float, pcm: bytes) -> None:
        start = self.heard.add(now, pcm)
        self.live.add_theirs(pcm, start, arrival=now)
        self._post(pcm)

    def _sent_audio(self, at: float, pcm: bytes) -> None:
        start = self.sent.add(at, pcm)
        self.live.add_ours(pcm, start)
        if self._sent_onsets.feed(pcm):
            self.sent_voice_onsets.append(time.time())

    def _bot_event(self, event: Mark | Clear, at: float) -> None:
        if isinstance(event, Clear):
            self.clears.append(at)
            self.live.add_clear(at)
            self._event("clear", "the bot cleared the audio not yet played (barge-in)", at)
        else:
            self._event("mark", f"the bot sent mark {event.name!r}", at)

    def _connection_state(self, state: str, detail: str) -> None:
        if state == "failed":
            self._ended.set()
            if self.failures:  # a refused upgrade we signed: the signature may be why
                detail = str(explain_refusal(self.failures[-1], self._line))
        if state == "reconnected":
            self._state("connected", detail.partition(" (")[0])
            self._event("reconnect", detail)
        else:
            self._state(state, detail)

    # -- the call -------------------------------------------------------------

    async def run(self, messages: AsyncIterator[str | bytes]) -> CallResult:
        """Dial, bridge the page and the bot until either hangs up, then report.

        Args:
            messages: What the page sends; its end (the page went away) hangs up.

        Returns:
            The call's result, as ``call`` reports it (also sent to the page).
        """
        self.t0 = time.monotonic()
        if is_webhook(self._options.uri):
            self._state("connecting", f"asking the webhook {redact_uri(self._options.uri)}")
            try:
                line = await through_webhook(self._options)
            except ConnectionFailure as failure:
                self.failures.append(failure)
                self._state("failed", str(failure))
                return await self._finish()
            # The page's rate stays the call's, whatever rate the stream named.
            self._use(replace(line, sample_rate=self.rate))
            for note in line.notes:
                self._event("info", note)
        self._state("connecting", f"dialing {self.transport.session.uri}")
        run = await self.caller.start()
        reader = asyncio.create_task(self._read(messages))
        ticker = asyncio.create_task(self._tick(run))
        ended = asyncio.create_task(self._ended.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([run, reader, ended, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                self.hung_up_by_page = not self.failures and not self._stopping.is_set()
                # What the page sent ahead of time is not said: the call ends now.
                self.mic.discard()
                await self.caller.end(now=self._stopping.is_set())
                await asyncio.wait(
                    [run, stopping], timeout=HANGUP_SECS, return_when=asyncio.FIRST_COMPLETED
                )
                if not run.done():
                    if not self._stopping.is_set():
                        logger.warning("phone: the call did not end after the hang-up; cancelling")
                    await self.caller.end(now=True)
                    await run
        finally:
            for task in (reader, ticker, ended, stopping):
                task.cancel()
            await asyncio.gather(reader, ticker, ended, stopping, return_exceptions=True)
            if not run.done():
                await self.caller.end(now=True)
            await asyncio.gather(run, return_exceptions=True)
        self._publish(self.live.finish())
        return await self._finish()

    async def _read(self, messages: AsyncIterator[str | bytes]) -> None:
        """Act on the page's messages until it hangs up or goes away."""
        async for message in messages:
            try:
                if await self._handle(message):
                    return
            except PageError as e:
                if self._bad_messages.add():
                    logger.warning(f"phone: {e}")
                    self._event("info", f"ignored a message from the page: {e}")
                elif self._bad_messages.silenced:
                    logger.warning("phone: the page sends more bad messages; counting them only")
                    self._event("info", "more bad messages from the page: counted, not shown")

    async def _handle(self, message: str | bytes) -> bool:
        """One message from the page; True when it hangs up."""
        if isinstance(message, bytes):
            if len(message) % 2 or len(message) > 2 * self.rate * MAX_CHUNK_SECS:
                raise PageError(f"{len(message)} bytes is not a chunk of 16-bit PCM up to 1 s")
            if self._arrived_onsets.feed(message):
                self.server_voice_onsets.append(time.time())
            self.mic.feed(message)
            return False
        try:
            data = json.loads(message)
        except ValueError:
            raise PageError(f"not JSON: {message[:40]!r}") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "hangup":
            return True
        if kind == "mute":
            self.mic.muted = bool(data.get("muted"))
            self._event("info", "microphone muted" if self.mic.muted else "microphone on")
        elif kind == "dtmf":
            await self._dtmf(str(data.get("digit")))
        elif kind == "voice":
            at = data.get("at_ms")
            if not isinstance(at, int | float):
                raise PageError("voice: at_ms is not a number")
            self.page_voice_onsets.append(at / 1000)
        else:
            raise PageError(f"unknown message type {kind!r}")
        return False

    async def _dtmf(self, digit: str) -> None:
        try:
            key = KeypadEntry(digit)
        except ValueError:
            raise PageError(f"dtmf: {digit!r} is not a key of the keypad") from None
        await self._worker.queue_frame(OutputDTMFUrgentFrame(button=key))
        self._event("dtmf", f"DTMF {digit} sent to the bot")

    async def _tick(self, run: asyncio.Task) -> None:
        """Counters and newly known turns for the page, twice a second."""
        while not run.done():
            await asyncio.sleep(STATS_SECS)
            now = time.monotonic()
            stats = self.transport.stats
            self._send(
                "stats",
                elapsed_s=round(now - self.t0, 1),
                sent_secs=round(stats.audio_secs_sent, 2),
                heard_secs=round(stats.audio_secs_received, 2),
                rtt_ms=None if stats.ping_rtt_secs is None else round(stats.ping_rtt_secs * 1e3, 1),
                underruns=self.live.underruns,
            )
            self._publish(self.live.poll(now))

    def _publish(self, updates: list[TurnUpdate | BargeIn]) -> None:
        for update in updates:
            if isinstance(update, TurnUpdate):
                latency = update.latency
                self._send(
                    "turn",
                    n=update.n,
                    utterance_end_s=round(update.utterance_end - self.t0, 3),
                    latency_ms=None if latency is None else round(latency * 1e3, 1),
                )
            else:
                clear = update.clear
                self._send(
                    "barge_in",
                    n=update.n,
                    onset_s=round(update.onset - self.t0, 3),
                    reaction_ms=round(update.reaction * 1e3, 1),
                    clear_ms=None if clear is None else round((clear - update.onset) * 1e3, 1),
                )

    async def _finish(self) -> CallResult:
        """The result, recording and PNG; the page's last message."""
        if self.failures:
            detail = str(self.failures[-1])
        elif self.hung_up_by_page:
            detail = "you hung up"
        elif self._stopping.is_set():
            detail = "the phone was stopped"
        else:
            detail = "the bot hung up"
        # Never dialed (the webhook failed): the URI is the one given.
        dialed = self.caller.run_task is not None
        uri = self.transport.session.uri if dialed else redact_uri(self._options.uri)
        staging = Path(tempfile.mkdtemp(prefix="pipecat-phone-"))
        try:
            recording = await self._in_time(self._write_recording, staging / "recording.wav")
            result = await self._in_time(
                measure_call,
                uri=uri,
                stats=self.transport.stats,
                sent=self.sent,
                heard=self.heard,
                interruptions=[],
                reconnects=self.reconnects,
                failures=[explain_refusal(f, self._line) for f in self.failures],
                started=self.t0,
                plot=staging / "timeline.png",
                clears=self.clears,
                end=self.caller.how_it_ended(),
            )
            plotted = result is not None and result.plot is not None
            if result is None:  # stopped before it was worked out
                result = CallResult(uri=uri, end=self.caller.how_it_ended())
                result.notes.append("the phone was stopped before the result was worked out")
            result.notes[:0] = self._line.notes
            result.carrier_errors = self.caller.carrier_errors()
            result.record = result.plot = None
            urls: dict[str, str | None] = {"recording": None, "timeline": None}
            if recording is not None:
                urls["recording"], path = self._keep("recording.wav", recording)
                result.record = str(path)
            if plotted:
                urls["timeline"], path = self._keep("timeline.png", staging / "timeline.png")
                result.plot = str(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not self.failures:
            self._state("ended", detail)
        summary = result.as_dict()
        summary["page_voice_onsets"] = self.page_voice_onsets
        summary["server_voice_onsets"] = self.server_voice_onsets
        summary["sent_voice_onsets"] = self.sent_voice_onsets
        summary["page_audio_dropped_secs"] = round(self.page_audio_dropped_secs, 3)
        self._send("ended", **urls, summary=summary)
        return result

    def _write_recording(self, path: Path) -> Path | None:
        """The stereo WAV (left the page, right the bot), if the call had audio."""
        rendered = render_pair(self.sent, self.heard)
        if rendered is None:
            return None
        _, left, right = rendered
        write_stereo(path, left, right, self.rate)
        return path

    async def _in_time(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``work`` in a thread, waited for until :meth:`stop`'s time is up (then None).

        The thread is a daemon: one still running when the time is up does
        not keep the process from exiting.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def target() -> None:
            try:
                value = work(*args, **kwargs)
            except BaseException as e:  # handed to the waiting task
                outcome = functools.partial(_settle, done, None, e)
            else:
                outcome = functools.partial(_settle, done, value, None)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(outcome)

        # Given up on (stopping), its outcome is nobody's: not an error to report.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        threading.Thread(target=target, name="phone-finish", daemon=True).start()
        while not done.done():
            if self._finish_by is None:
                stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait([done, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                continue
            left = self._finish_by - time.monotonic()
            if left <= 0:
                logger.warning("phone: stopping: a call's files were not finished in time")
                return None
            await asyncio.wait([done], timeout=left)
        return done.result()


def _settle(future: asyncio.Future[T], value: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)  # type: ignore[arg-type]
