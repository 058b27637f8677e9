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


def window_levels(samples: np.ndarray, rate: int, window: float = WINDOW_SECS) -> np.ndarray:
    """RMS level in dBFS of each whole window."""
    n = int(rate * window)
    count = len(samples) // n
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * n].reshape(count, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9))


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
        self._rate = rate
        self._threshold = threshold_db
        self._min_silence = min_silence
        self._min_speech = min_speech
        self._window = window
        self._window_bytes = 2 * int(rate * window)
        self._pending = b""
        self._pending_t = 0.0
        self._speech_start: float | None = None
        self._speech_end = 0.0

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is in progress (not yet ended by silence)."""
        return self._speech_start is not None

    def feed(self, pcm: bytes, t: float) -> list[float]:
        """Add audio whose first sample is at time ``t``; return utterance end times."""
        if not self._pending:
            self._pending_t = t
        self._pending += pcm
        ends: list[float] = []
        whole = len(self._pending) // self._window_bytes * self._window_bytes
        if not whole:
            return ends
        levels = window_levels(pcm_to_float(self._pending[:whole]), self._rate, self._window)
        t0 = self._pending_t
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
        self._pending = self._pending[whole:]
        self._pending_t = t0 + len(levels) * self._window
        return ends
