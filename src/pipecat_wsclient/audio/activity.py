#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""When someone was speaking on a call: voiced windows on a playback timeline (pure, no I/O).

Audio is added with the time its first sample plays; each 20 ms window is
voiced when its level is above a threshold. The questions a scripted call
asks are answered from those windows, with ``now`` passed in so a fake clock
tests them:

- when did an answer begin after a time (:meth:`VoiceActivity.onset_after`);
- has it ended, i.e. been followed by enough silence
  (:meth:`VoiceActivity.end_of_run`);
- was someone speaking at a time (:meth:`VoiceActivity.speaking_at`).

Example::

    heard = VoiceActivity(16000)
    heard.add(pcm, start=playback_time)
    onset = heard.onset_after(our_speech_end)
    end = heard.end_of_run(onset, silence=0.8, now=loop.time())  # None: not yet
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np

from pipecat_wsclient.audio.levels import (
    SPEECH_THRESHOLD_DB,
    WINDOW_SECS,
    WindowCutter,
    window_levels,
)
from pipecat_wsclient.audio.wav import pcm_to_float

RUN_GAP_SECS = 0.25
"""Pauses shorter than this do not end a stretch of speech (between words)."""


class VoiceActivity:
    """The voiced 20 ms windows of one side of a call, by playback time.

    Windows are placed from the start time of each added chunk; audio that
    does not start where the last chunk ended begins a new window grid.
    """

    def __init__(
        self, rate: int, *, threshold_db: float = SPEECH_THRESHOLD_DB, window: float = WINDOW_SECS
    ):
        """Initialize an empty timeline.

        Args:
            rate: Sample rate of the audio added (16-bit mono PCM).
            threshold_db: A window louder than this (dBFS) is voiced.
            window: Window length in seconds.
        """
        self._rate = rate
        self._threshold = threshold_db
        self._window = window
        self._cutter = WindowCutter(rate, window)
        self._next_t: float | None = None
        self.starts: list[float] = []
        """Start times of the voiced windows, ascending."""
        self.last_audio_end = 0.0
        """When the last audio added finishes playing."""

    def add(self, pcm: bytes, start: float) -> None:
        """Add audio whose first sample plays at ``start``."""
        if not pcm:
            return
        contiguous = self._next_t is not None and abs(start - self._next_t) < 1e-3
        if not contiguous:
            self._flush()
        self._next_t = start + len(pcm) / (2 * self._rate)
        self.last_audio_end = max(self.last_audio_end, self._next_t)
        self._windows(*self._cutter.add(pcm, None if contiguous else start))

    def _flush(self) -> None:
        """Judge a trailing partial window (padded with silence) before a discontinuity."""
        self._windows(*self._cutter.flush())

    def _windows(self, t0: float, levels: np.ndarray) -> None:
        for i, level in enumerate(levels):
            if level > self._threshold:
                t = t0 + i * self._window
                if not self.starts or t > self.starts[-1]:
                    self.starts.append(t)
                else:  # out of order (a new grid behind the last): keep the list sorted
                    self.starts.insert(bisect_left(self.starts, t), t)

    def onset_after(self, t: float, until: float | None = None) -> float | None:
        """The start of the first voiced window at or after ``t`` (before ``until``)."""
        i = bisect_left(self.starts, t)
        if i == len(self.starts):
            return None
        onset = self.starts[i]
        return onset if until is None or onset < until else None

    def speaking_at(self, t: float, gap: float = RUN_GAP_SECS) -> bool:
        """Whether ``t`` falls in a stretch of speech (pauses under ``gap`` included)."""
        i = bisect_right(self.starts, t)
        if i == 0:
            return False
        before = self.starts[i - 1] + self._window
        if t < before:
            return True
        return i < len(self.starts) and self.starts[i] - before < gap

    def run_start(self, t: float, gap: float = RUN_GAP_SECS) -> float | None:
        """The start of the stretch of speech going on at ``t`` (None if silent at ``t``)."""
        if not self.speaking_at(t, gap):
            return None
        i = bisect_right(self.starts, t) - 1
        if i < 0:  # speech starts just after t, within the gap
            return self.starts[0]
        while i > 0 and self.starts[i] - (self.starts[i - 1] + self._window) < gap:
            i -= 1
        return self.starts[i]

    def end_of_run(
        self, t: float, silence: float, now: float, until: float | None = None
    ) -> float | None:
        """Where the speech going on at (or starting after) ``t`` ends, once confirmed.

        The run is the voiced windows from ``t`` on, joined across pauses
        shorter than ``silence``. Its end is confirmed when ``silence`` has
        passed after it (``now`` is past ``end + silence``) with no voiced window.

        Args:
            t: A time in or before the run.
            silence: The pause that ends it.
            now: The current time.
            until: Only windows starting before this count (a ``clear`` ended
                the run there).

        Returns:
            The end of the run's last voiced window, or None if not confirmed yet
            (or nothing was voiced after ``t``).
        """
        i = bisect_left(self.starts, t - self._window)
        if i == len(self.starts) or (until is not None and self.starts[i] >= until):
            return None
        end = self.starts[i] + self._window
        for start in self.starts[i + 1 :]:
            if start - end >= silence or (until is not None and start >= until):
                break
            end = start + self._window
        return end if now - end >= silence else None

    def voiced_secs(self, start: float, end: float) -> float:
        """Seconds of voiced windows that start in ``[start, end)``."""
        return (bisect_left(self.starts, end) - bisect_left(self.starts, start)) * self._window


def voiced_span(pcm: bytes, rate: int) -> tuple[int, int] | None:
    """Byte offsets ``(start, end)`` of the voiced part of ``pcm``, or None if all silent."""
    activity = VoiceActivity(rate)
    activity.add(pcm, 0.0)
    activity._flush()
    if not activity.starts:
        return None
    window_bytes = activity._cutter.window_bytes
    first = round(activity.starts[0] / activity._window) * window_bytes
    last = (round(activity.starts[-1] / activity._window) + 1) * window_bytes
    return first, min(last, len(pcm))


class SentTimes:
    """The playback time of each byte we sent: chunks in send order, with their times."""

    def __init__(self) -> None:
        """Initialize with nothing sent."""
        self._offsets: list[int] = []
        self._times: list[float] = []
        self._total = 0

    def add(self, size: int, start: float) -> None:
        """Record a chunk of ``size`` bytes whose playback starts at ``start``."""
        self._offsets.append(self._total)
        self._times.append(start)
        self._total += size

    @property
    def total(self) -> int:
        """Bytes sent so far."""
        return self._total

    def time_of(self, offset: int, rate: int) -> float | None:
        """When byte ``offset`` plays, or None if it has not been sent yet."""
        if offset > self._total:
            return None
        i = bisect_right(self._offsets, offset) - 1
        if i < 0:
            return None
        return self._times[i] + (offset - self._offsets[i]) / (2 * rate)


ONSET_GAP_SECS = 0.5
"""Quiet before a voiced chunk for it to be a new onset (the page's and the test bot's rule)."""


class VoiceOnsets:
    """When voice starts in audio that arrives in chunks: a voiced chunk after 0.5 s of quiet.

    The page, our server and the test bot apply the same rule to the same
    audio, each with its own clock reading; the differences are the legs of
    the mouth-to-bot latency.

    Example::

        onsets = VoiceOnsets(8000)
        if onsets.feed(chunk):
            heard_at.append(time.time())
    """

    def __init__(self, rate: int, *, threshold_db: float = SPEECH_THRESHOLD_DB):
        """Initialize as after a long silence.

        Args:
            rate: Sample rate of the audio (16-bit mono PCM).
            threshold_db: A chunk louder than this (RMS, dBFS) is voiced.
        """
        self._rate = rate
        self._threshold = threshold_db
        self._quiet = ONSET_GAP_SECS

    def feed(self, pcm: bytes) -> bool:
        """Add the next chunk; True if voice starts in it."""
        samples = pcm_to_float(pcm)
        if not len(samples):
            return False
        level = float(window_levels(samples, self._rate, len(samples) / self._rate)[0])
        if level <= self._threshold:
            self._quiet += len(samples) / self._rate
            return False
        onset = self._quiet >= ONSET_GAP_SECS - 1e-9
        self._quiet = 0.0
        return onset
