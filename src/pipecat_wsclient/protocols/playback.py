#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A simulated playback buffer, as a carrier keeps for the bot's audio (pure, no I/O).

The carrier plays the bot's audio in real time, in order. A *mark* queued
after some audio is released (echoed to the bot) once that audio has
played; a *clear* drops the audio not yet played and releases every pending
mark, as Twilio and its peers do.

Playback keeps an absolute schedule, as :mod:`pipecat_wsclient.pacing` does
for our own audio: the audio queued since the schedule started plays from
``start + bytes played / rate``, however late the caller's ticks run, so
continuous audio is released at the rate it plays and nothing adds up. The
schedule restarts only on an underrun: the bot's audio arrives more than
``underrun_secs`` after what was queued before it finished playing (the
carrier played silence meanwhile); audio that is merely a little late (a
tick, network jitter) keeps its place on the schedule.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_UNDERRUN_SECS = 0.02
"""How late the bot's next audio may be before the carrier's buffer has run dry
(one 20 ms frame): later than this, the schedule restarts when it arrives."""


@dataclass
class Released:
    """What became due: audio to hand to the pipeline and marks to echo, in order."""

    audio: list[bytes] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)


class PlaybackClock:
    """The carrier's playout queue: audio and marks, played in real time.

    Audio is handed over when its playback starts (``advance``); a mark once
    all audio queued before it has finished playing. Both are due at fixed
    times on the schedule (:attr:`next_due`), so ``advance`` may be called on
    any ticks: a late tick releases what is due late, and the next one is no
    later for it.

    Example::

        clock = PlaybackClock(bytes_per_sec=32000)
        clock.add_audio(pcm, now)
        clock.add_mark("greeting-done")
        released = clock.advance(now)     # audio whose playback has started,
                                          # marks whose audio has played
        sleep_until = clock.next_due      # when something more is due (or None)
        released = clock.clear()          # barge-in: the marks are released
    """

    def __init__(self, bytes_per_sec: int, underrun_secs: float = DEFAULT_UNDERRUN_SECS):
        """Initialize the clock.

        Args:
            bytes_per_sec: Bytes of queued audio played per second.
            underrun_secs: How long after the queued audio has finished playing
                new audio may still arrive and keep its place on the schedule
                (jitter); arriving later, it starts a new schedule when it
                arrives (an underrun).

        Raises:
            ValueError: If ``bytes_per_sec`` is not positive or ``underrun_secs``
                is negative.
        """
        if bytes_per_sec <= 0 or underrun_secs < 0:
            raise ValueError("bytes_per_sec must be > 0 and underrun_secs >= 0")
        self._bps = bytes_per_sec
        self._underrun_secs = underrun_secs
        self._queue: deque[tuple[str, bytes | str]] = deque()
        self._queued_bytes = 0
        self._start: float | None = None  # when the schedule's first audio started playing
        self._scheduled = 0  # bytes started on the schedule since then
        self.played_bytes = 0
        """Bytes of audio started (handed over) in all."""
        self.cleared_bytes = 0
        """Bytes of audio dropped by clears."""
        self.underruns = 0
        """Times the audio ran dry and the schedule restarted (a pause of the bot's or
        an underrun; the first start is not counted)."""
        self.gap_secs = 0.0
        """Silence played between the bot's audio at those times, in all."""

    @property
    def queued_secs(self) -> float:
        """Seconds of audio queued and not started yet."""
        return self._queued_bytes / self._bps

    @property
    def play_end(self) -> float | None:
        """When the audio started so far finishes playing (None before any audio)."""
        if self._start is None:
            return None
        return self._start + self._scheduled / self._bps

    @property
    def next_due(self) -> float | None:
        """When the next queued audio starts or mark is released (None if nothing is queued).

        It may be in the past: what is due is released by the next :meth:`advance`.
        """
        if not self._queue:
            return None
        end = self.play_end
        return float("-inf") if end is None else end

    def add_audio(self, pcm: bytes, now: float) -> None:
        """Queue audio to play after what is queued already.

        Args:
            pcm: The audio.
            now: When it arrived (monotonic seconds). If the audio before it
                finished playing more than ``underrun_secs`` earlier and
                nothing else is queued, the schedule restarts at ``now``.
        """
        end = self.play_end
        if not self._queued_bytes and (end is None or now - end > self._underrun_secs):
            if end is not None:
                self.underruns += 1
                self.gap_secs += now - end
            self._start = now
            self._scheduled = 0
        self._queue.append(("audio", pcm))
        self._queued_bytes += len(pcm)

    def add_mark(self, name: str) -> None:
        """Queue a mark: it is released when the audio queued before it has played."""
        self._queue.append(("mark", name))

    def advance(self, now: float) -> Released:
        """Release what is due at ``now``.

        Args:
            now: The current monotonic time, in seconds.

        Returns:
            The audio whose playback has started by ``now`` (on the schedule,
            not at ``now``) and the marks whose audio has finished playing.
        """
        released = Released()
        while self._queue:
            end = self.play_end
            if end is not None and end > now:
                break
            kind, item = self._queue.popleft()
            if kind == "mark":
                released.marks.append(str(item))
                continue
            assert isinstance(item, bytes)
            self._scheduled += len(item)
            self._queued_bytes -= len(item)
            self.played_bytes += len(item)
            released.audio.append(item)
        return released

    def clear(self) -> Released:
        """Drop the audio not started yet; release every pending mark.

        The audio already started plays to its end: the next audio keeps the
        schedule if it arrives by then (plus ``underrun_secs``).

        Returns:
            The marks released (``audio`` is empty: dropped audio is not played).
        """
        released = Released()
        for kind, item in self._queue:
            if kind == "mark":
                released.marks.append(str(item))
            else:
                self.cleared_bytes += len(item)
        self._queue.clear()
        self._queued_bytes = 0
        return released
