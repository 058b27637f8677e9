#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speech by energy: window levels and streaming end-of-speech (pure, no I/O).

All audio is 16-bit little-endian PCM. Times are seconds.
"""

from __future__ import annotations

import numpy as np

from pipecat_wsclient.audio.wav import pcm_to_float

WINDOW_SECS = 0.02
"""Analysis window for speech detection: 20 ms."""

SPEECH_THRESHOLD_DB = -40.0
"""A window is speech when its RMS is above this (dBFS)."""

MIN_SILENCE_SECS = 0.3
"""Silence that ends an utterance."""

MIN_SPEECH_SECS = 0.08
"""Shorter bursts are not utterances (clicks)."""

STOP_SILENCE_SECS = 0.5
"""Silence after which the bot has stopped talking (``--stop-silence-ms``).

Bots pause inside an answer: between words (40-200 ms), at commas (about
200 ms) and between sentences (eSpeak NG at 150 wpm: 380 ms; neural TTS
voices 250-450 ms, more when a streamed sentence comes late). 0.5 s is above
those pauses, so a sentence break is not taken for a stop, and below the
time a bot that did stop takes to answer what interrupted it (our
utterance, then its response latency). A carrier ``clear`` ends the bot's
talk at once, whatever the silence.
"""


def window_levels(samples: np.ndarray, rate: int, window: float = WINDOW_SECS) -> np.ndarray:
    """RMS level in dBFS of each whole window."""
    n = int(rate * window)
    count = len(samples) // n
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * n].reshape(count, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9))


SUB_WINDOWS = 8
"""Parts of a window (2.5 ms of 20) that date a voiced window's edges."""


def voiced_edges(
    samples: np.ndarray,
    rate: int,
    voiced: np.ndarray,
    *,
    threshold_db: float = SPEECH_THRESHOLD_DB,
    window: float = WINDOW_SECS,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the sound begins and ends inside each voiced window, to a part of a window.

    A window is voiced when its level is above ``threshold_db``; so is then at
    least one of its :data:`SUB_WINDOWS` parts (the window's power is their
    mean). The first such part dates an onset in that window, the end of the
    last one an end: a window grid that does not line up with the audio
    neither delays an onset nor prolongs an end by up to a window.

    Args:
        samples: Float samples of whole windows (what does not fill one is ignored).
        rate: Their sample rate.
        voiced: Which windows are voiced (as many as there are whole windows).
        threshold_db: The level (dBFS) a part must pass.
        window: Window length in seconds.

    Returns:
        Per window, seconds from its start to the start of its first loud part
        and to the end of its last one (NaN for a window that is not voiced).
    """
    n = int(rate * window)
    count = len(voiced)
    first = np.full(count, np.nan)
    last = np.full(count, np.nan)
    if count == 0 or not voiced.any():
        return first, last
    frames = samples[: count * n].reshape(count, n).astype(np.float64)[voiced]
    bounds = np.linspace(0, n, SUB_WINDOWS + 1).astype(int)
    power = np.add.reduceat(frames**2, bounds[:-1], axis=1) / np.diff(bounds)
    loud = power > (10 ** (threshold_db / 20)) ** 2
    loud[~loud.any(axis=1), :] = True  # rounding: the window as a whole
    first[voiced] = bounds[np.argmax(loud, axis=1)] / rate
    last[voiced] = bounds[SUB_WINDOWS - np.argmax(loud[:, ::-1], axis=1)] / rate
    return first, last


class WindowCutter:
    """Cuts audio that arrives in chunks into whole windows and measures each one's level.

    Audio is added with the time of its first sample; what does not fill a
    window waits for the next chunk (or :meth:`flush`).

    Example::

        cutter = WindowCutter(16000)
        t0, levels = cutter.add(pcm, t)   # window i starts at t0 + i * cutter.window
    """

    def __init__(self, rate: int, window: float = WINDOW_SECS):
        """Initialize with nothing pending.

        Args:
            rate: Sample rate of the audio (16-bit mono PCM).
            window: Window length in seconds.
        """
        self.rate = rate
        self.window = window
        self.window_bytes = 2 * int(rate * window)
        self.pending = b""
        """Audio that does not fill a window yet."""
        self.pending_t = 0.0
        """When the pending audio (or the next window) starts."""

    def add(self, pcm: bytes, t: float | None = None) -> tuple[float, np.ndarray]:
        """Add audio starting at ``t`` (None: right after the pending audio).

        Returns:
            The start of the first whole window completed, and the levels (dBFS)
            of the windows completed (none: an empty array).
        """
        if not self.pending and t is not None:
            self.pending_t = t
        self.pending += pcm
        whole = len(self.pending) // self.window_bytes * self.window_bytes
        return self._cut(whole)

    def flush(self) -> tuple[float, np.ndarray]:
        """Complete a partial window with silence and measure it."""
        if self.pending:
            self.pending += bytes(self.window_bytes - len(self.pending))
        return self._cut(len(self.pending))

    def _cut(self, size: int) -> tuple[float, np.ndarray]:
        t0 = self.pending_t
        if not size:
            return t0, np.zeros(0)
        levels = window_levels(pcm_to_float(self.pending[:size]), self.rate, self.window)
        self.pending = self.pending[size:]
        self.pending_t = t0 + len(levels) * self.window
        return t0, levels


class EndOfSpeechDetector:
    """Streaming utterance-end detection, for audio arriving in chunks.

    Feed audio with the time of its first sample; get back the times at which
    utterances ended (the end of their last speech window), once
    ``min_silence`` of silence has followed.

    Example::

        detector = EndOfSpeechDetector(16000)
        for t, chunk in chunks:
            for end in detector.feed(chunk, t):
                schedule_answer(end + latency)
    """

    def __init__(
        self,
        rate: int,
        *,
        threshold_db: float = SPEECH_THRESHOLD_DB,
        min_silence: float = MIN_SILENCE_SECS,
        min_speech: float = MIN_SPEECH_SECS,
        window: float = WINDOW_SECS,
    ):
        """Initialize the detector.

        Args:
            rate: Sample rate of the audio fed.
            threshold_db: Level above which a window is speech.
            min_silence: A pause at least this long ends an utterance.
            min_speech: Utterances shorter than this are ignored.
            window: Analysis window in seconds.
        """
        self._threshold = threshold_db
        self._min_silence = min_silence
        self._min_speech = min_speech
        self._window = window
        self._cutter = WindowCutter(rate, window)
        self._speech_start: float | None = None
        self._speech_end = 0.0

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is in progress (not yet ended by silence)."""
        return self._speech_start is not None

    def feed(self, pcm: bytes, t: float) -> list[float]:
        """Add audio whose first sample is at time ``t``; return utterance end times."""
        ends: list[float] = []
        t0, levels = self._cutter.add(pcm, t)
        for i, level in enumerate(levels):
            start = t0 + i * self._window
            if level > self._threshold:
                if self._speech_start is None:
                    self._speech_start = start
                self._speech_end = start + self._window
            elif (
                self._speech_start is not None
                and start + self._window - self._speech_end >= self._min_silence
            ):
                if self._speech_end - self._speech_start >= self._min_speech:
                    ends.append(self._speech_end)
                self._speech_start = None
        return ends
