#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The line of a scripted call, and the waits on it: :class:`Line`.

One job: keep what went over the line on one clock, and wait for moments
on it. :class:`~pipecat_wsclient.scenario.call.VoiceCall` decides what a
turn is; the line only knows audio and times (``time.monotonic()``).

The caller is the one every front end uses
(:class:`~pipecat_wsclient.caller.builder.Caller`), with the line's
microphone as its source:

- the microphone sends audio all the time, as a phone line does: our
  speech when there is some, silence otherwise, 20 ms at a time on an
  absolute schedule (a bot's VAD needs the silence after speech to notice
  its end: :class:`~pipecat_wsclient.caller.microphone.LineMicrophone`);
- the bot's audio is kept at its playback time (a carrier protocol already
  plays it out in real time and drops what a ``clear`` cancels) and speech
  is found in it (:class:`~pipecat_wsclient.audio.activity.VoiceActivity`);
- each chunk of ours is noted when it went out, so the end of our speech
  is known at the far end's playback time;
- the carrier's ``mark`` and ``clear`` messages are noted when they came.

Each wait polls those timelines every :data:`POLL_SECS` and returns early
when the call ends.

Example::

    line = Line(LineOptions("ws://127.0.0.1:8765/ws", protocol="twilio"))
    await line.caller.start()
    await line.caller.connected_or_failed()
    start, end = await line.speak(pcm)
    onset = await line.await_onset(end, timeout=10.0)
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import OutputDTMFUrgentFrame

from pipecat_wsclient.audio.activity import SentTimes, VoiceActivity, voiced_span
from pipecat_wsclient.audio.track import Rendered, Track, count_underruns, render_pair
from pipecat_wsclient.audio.turns import CLEAR_SLACK_SECS
from pipecat_wsclient.audio.wav import write_stereo
from pipecat_wsclient.caller.builder import Caller, LineOptions
from pipecat_wsclient.caller.microphone import LineMicrophone
from pipecat_wsclient.protocols.carrier import Clear, Mark

POLL_SECS = 0.02
"""How often a wait looks at the timelines."""


class Line:
    """A scripted call's line: the caller, its microphone, what was sent and heard.

    Attributes:
        caller: The caller (transport and pipeline); ``caller.start()`` dials.
        rate: The pipeline's sample rate (16-bit mono PCM both ways).
        microphone: Sends our speech when queued, silence otherwise.
        sent_track: Our audio at the far end's playback time.
        heard_track: The bot's audio at its playback time.
        heard: Speech found in the bot's audio.
        sent_times: When each byte of ours went out.
        carrier_events: ``(time, "mark" | "clear")`` for each carrier event.
        options: The options the line dials with.
    """

    def __init__(self, options: LineOptions):
        """Build the caller (nothing is dialed until ``caller.start()``).

        Args:
            options: Where and how to connect.

        Raises:
            ValueError: For an unknown protocol.
        """
        self.carrier_events: list[tuple[float, str]] = []
        self.options = options
        self.stop_silence = options.stop_silence
        self.microphone = LineMicrophone(0)
        self.caller = Caller(
            options,
            on_heard=self._heard_audio,
            on_sent=self._sent_audio,
            sources=[self.microphone],
            on_bot_event=self._bot_event,
            # Barge-in timing counts what is in flight: each chunk as it goes out.
            live_sent_audio=True,
        )
        self.rate = sample_rate = self.microphone.rate = self.caller.rate
        self.sent_track, self.heard_track = Track(sample_rate), Track(sample_rate)
        self.heard = VoiceActivity(sample_rate)
        self.sent_times = SentTimes()

    # -- timelines (called by the processors) ---------------------------------

    def _heard_audio(self, at: float, pcm: bytes) -> None:
        start = self.heard_track.add(at, pcm)
        self.heard.add(pcm, start)

    def _sent_audio(self, at: float, pcm: bytes) -> None:
        start = self.sent_track.add(at, pcm)
        self.sent_times.add(len(pcm), start)

    def _bot_event(self, event: Mark | Clear, at: float) -> None:
        self.carrier_events.append((at, "clear" if isinstance(event, Clear) else "mark"))

    @property
    def ended(self) -> bool:
        """Whether the call is over (hung up by either side, or lost)."""
        return self.caller.ended

    # -- sending --------------------------------------------------------------

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` or the end of the call."""
        while not self.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(POLL_SECS, left))

    async def speak(self, pcm: bytes) -> tuple[float | None, float | None]:
        """Queue speech and wait until its voiced part is sent.

        Args:
            pcm: Our speech at :attr:`rate`; silence around the voice is sent
                but not waited for.

        Returns:
            When its voice starts and ends playing at the far end; an end of
            None if it was not all sent (the call ended, or 5 s late).
        """
        first, last = voiced_span(pcm, self.rate) or (0, len(pcm))
        offset = self.microphone.enqueue(pcm)
        limit = time.monotonic() + self.microphone.queued_bytes / (2 * self.rate) + 5.0
        start = end = None
        while not self.ended and time.monotonic() < limit:
            start = start or self.sent_times.time_of(offset + first, self.rate)
            end = self.sent_times.time_of(offset + last, self.rate)
            if end is not None:
                break
            await asyncio.sleep(POLL_SECS)
        return start, end

    async def press_key(self, digit: str) -> None:
        """Send one DTMF key (0-9, *, #, A-D) at once.

        Raises:
            ValueError: For any other key.
        """
        await self.caller.worker.queue_frame(OutputDTMFUrgentFrame(button=KeypadEntry(digit)))

    def delay(self) -> float:
        """Seconds from now until audio queued now would start playing at the far end.

        The line runs ahead of real time: what the microphone has handed on and
        not yet sent, then what has been sent and not yet played.
        """
        bps = 2 * self.rate
        in_flight = (self.microphone.pushed_bytes - self.sent_times.total) / bps
        ahead = max(0.0, self.sent_track.end - time.monotonic())
        return ahead + max(0.0, in_flight)

    async def wait_to_voice(self, when: float, pcm: bytes) -> None:
        """Wait so that ``pcm``'s voice, queued on return, plays at ``when`` (or just after).

        Args:
            when: When the voice should start playing at the far end.
            pcm: The speech about to be queued (its leading silence counts).
        """
        span = voiced_span(pcm, self.rate)
        leading = span[0] / (2 * self.rate) if span else 0.0  # silence before the voice
        while not self.ended:
            left = when - time.monotonic() - self.delay() - leading
            if left <= 0:
                return
            await asyncio.sleep(min(POLL_SECS, left))

    # -- hearing --------------------------------------------------------------

    async def await_onset(self, after: float, timeout: float) -> float | None:
        """The first voiced audio of the bot at or after ``after``, waiting up to ``timeout``.

        Returns:
            Its playback time, or None if none came in time or the call ended.
        """
        deadline = max(after, time.monotonic()) + timeout
        while True:
            onset = self.heard.onset_after(after)
            if onset is not None or self.ended or time.monotonic() >= deadline:
                return onset
            await asyncio.sleep(POLL_SECS)

    async def await_end(self, onset: float, silence: float, max_secs: float) -> tuple[float, bool]:
        """Wait for the end of the bot's speech that began at ``onset``.

        Args:
            onset: Where the speech began.
            silence: Seconds of silence that end it.
            max_secs: Cut it off this long after ``onset``.

        Returns:
            Where it ended, and True if it was cut off.
        """
        limit = onset + max_secs
        while True:
            now = time.monotonic()
            end = self.heard.end_of_run(onset, silence, now)
            if end is not None:
                return end, False
            if self.ended:
                return self.heard.end_of_run(onset, silence, float("inf")) or onset, False
            if now >= limit:
                return now, True
            await asyncio.sleep(POLL_SECS)

    def talk_end(self, t: float, now: float) -> float | None:
        """Where the bot's talk going on at ``t`` (or starting after it) stopped, once known.

        The turn engine's rule (:mod:`pipecat_wsclient.audio.turns`): the
        talk ends at the start of a silence of :attr:`stop_silence`, or at
        the bot's ``clear`` (from ``CLEAR_SLACK_SECS`` before ``t`` on), what
        plays after it being new talk.

        Returns:
            The end of its last voiced window before that, or None if not known yet.
        """
        clear = self.first_clear(t - CLEAR_SLACK_SECS)
        if clear is not None and clear <= now:
            stop = self.heard.end_of_run(t, self.stop_silence, math.inf, until=clear)
            return stop if stop is not None else t
        return self.heard.end_of_run(t, self.stop_silence, now)

    async def await_stop(self, ours: float, max_secs: float) -> float:
        """When the bot's talk going on at our onset ``ours`` stopped (never before ``ours``).

        Args:
            ours: When our speech began playing (a barge-in).
            max_secs: Give up this long after ``ours`` and return the time then.
        """
        limit = ours + max_secs
        while True:
            now = time.monotonic()
            stop = self.talk_end(ours, now)
            if stop is not None:
                return max(stop, ours)
            if self.ended:
                stop = self.talk_end(ours, math.inf)
                return now if stop is None else max(stop, ours)
            if now >= limit:
                return now
            await asyncio.sleep(POLL_SECS)

    # -- questions on the timelines -------------------------------------------

    def carrier_counts(self, start: float, end: float) -> tuple[int, int]:
        """The carrier's marks and clears that came in ``[start, end)``."""
        kinds = [k for t, k in self.carrier_events if start <= t < end]
        return kinds.count("mark"), kinds.count("clear")

    def first_clear(self, since: float) -> float | None:
        """When the first carrier ``clear`` at or after ``since`` came (None: none did)."""
        return next((t for t, k in self.carrier_events if k == "clear" and t >= since), None)

    def underruns(self, start: float, end: float) -> int:
        """Underruns in the bot's audio that plays within ``[start, end]``."""
        return _underruns(self.heard_track, start, end)

    def heard_between(self, start: float, end: float) -> bytes:
        """The bot's chunks that played in part within ``(start, end)``, joined.

        Joined without the gaps late chunks left in the playback: what the bot
        said, as it sent it (PCM at :attr:`rate`).
        """
        bps = 2 * self.rate
        return b"".join(
            pcm
            for played, pcm in self.heard_track.chunks
            if played + len(pcm) / bps > start and played < end
        )

    def render(self) -> Rendered | None:
        """Both sides on one timeline: its start time, our audio, the bot's (None if no audio)."""
        return render_pair(self.sent_track, self.heard_track)

    def write_recording(self, path: Path, rendered: Rendered | None = None) -> bool:
        """Write the call as a stereo WAV (left: us, right: the bot); False if no audio.

        Args:
            path: The WAV file.
            rendered: What :meth:`render` returned, if already at hand.
        """
        rendered = rendered or self.render()
        if rendered is None:
            return False
        _, left, right = rendered
        write_stereo(path, left, right, self.rate)
        return True


def _underruns(track: Track, start: float, end: float) -> int:
    """Underruns among the chunks of ``track`` that play within ``[start, end]``."""
    part = Track(track.rate)
    for arrival, (play, pcm) in zip(track.arrivals, track.chunks, strict=True):
        if start - 0.05 <= play <= end:
            part.arrivals.append(arrival)
            part.chunks.append((play, pcm))
    return count_underruns(part)
