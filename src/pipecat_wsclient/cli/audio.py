#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio for the command line: WAV files, speech detection, call timelines (no I/O but files).

All audio is 16-bit little-endian PCM. Times are seconds on the event loop's
monotonic clock.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

WINDOW_SECS = 0.02
"""Analysis window for speech detection: 20 ms."""

SPEECH_THRESHOLD_DB = -40.0
"""A window is speech when its RMS is above this (dBFS)."""

MIN_SILENCE_SECS = 0.3
"""Silence that ends an utterance."""

MIN_SPEECH_SECS = 0.08
"""Shorter bursts are not utterances (clicks)."""


def read_wav(path: str | Path, rate: int) -> bytes:
    """Read a PCM WAV file of any rate, width and channel count as mono at ``rate``.

    Args:
        path: The file.
        rate: The sample rate wanted.

    Returns:
        16-bit mono PCM at ``rate``.

    Raises:
        ValueError: If the file cannot be read or is not PCM WAV.
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a PCM WAV file ({e})") from e
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from e
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)) | (
            b[:, 2].astype(np.int8).astype(np.int32) << 16
        )
        samples = ints.astype(np.float32) / 2**23
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    mono = samples.reshape(-1, channels).mean(axis=1)
    if src_rate != rate:
        mono = soxr.resample(mono, src_rate, rate)
    return float_to_pcm(mono)


def write_wav(path: str | Path, pcm: bytes, rate: int, channels: int = 1) -> None:
    """Write 16-bit PCM (interleaved when ``channels`` > 1) to a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """16-bit PCM to floats in [-1, 1)."""
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768


def float_to_pcm(samples: np.ndarray) -> bytes:
    """Floats in [-1, 1] to 16-bit PCM (clipped)."""
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def window_levels(samples: np.ndarray, rate: int, window: float = WINDOW_SECS) -> np.ndarray:
    """RMS level in dBFS of each whole window."""
    n = int(rate * window)
    count = len(samples) // n
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * n].reshape(count, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9))


@dataclass
class Segment:
    """A stretch of speech, in seconds from the start of the audio."""

    start: float
    end: float


def speech_segments(
    samples: np.ndarray,
    rate: int,
    *,
    threshold_db: float = SPEECH_THRESHOLD_DB,
    min_silence: float = MIN_SILENCE_SECS,
    min_speech: float = MIN_SPEECH_SECS,
    window: float = WINDOW_SECS,
) -> list[Segment]:
    """Find utterances by energy: speech windows joined across pauses shorter than ``min_silence``.

    Args:
        samples: Mono float samples.
        rate: Their sample rate.
        threshold_db: Level above which a window is speech.
        min_silence: A pause at least this long ends an utterance.
        min_speech: Utterances shorter than this are ignored.
        window: Analysis window in seconds.

    Returns:
        The utterances, in order.
    """
    voiced = window_levels(samples, rate, window) > threshold_db
    segments: list[Segment] = []
    start: int | None = None
    last = -1
    gap = round(min_silence / window)
    for i, v in enumerate(voiced):
        if not v:
            continue
        if start is None:
            start = i
        elif i - last > gap:
            segments.append(Segment(start * window, (last + 1) * window))
            start = i
        last = i
    if start is not None:
        segments.append(Segment(start * window, (last + 1) * window))
    # (The lengths are sums of window floats: one of exactly ``min_speech`` counts.)
    return [s for s in segments if s.end - s.start >= min_speech - 1e-9]


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


@dataclass
class Track:
    """Audio placed on a timeline at its playback time, as a far end would play it.

    A chunk plays when it arrives, or when the chunk before it has finished,
    whichever is later (a jitter buffer that never drops).
    """

    rate: int
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    _play_end: float = 0.0

    def add(self, arrival: float, pcm: bytes) -> float:
        """Place a chunk that arrived at ``arrival``; return its playback time."""
        self.arrivals.append(arrival)
        start = max(arrival, self._play_end)
        self._play_end = start + len(pcm) / (2 * self.rate)
        self.chunks.append((start, pcm))
        return start

    @property
    def end(self) -> float:
        """When the last chunk finishes playing."""
        return self._play_end

    def render(self, t0: float, duration: float) -> np.ndarray:
        """The track from ``t0`` for ``duration`` seconds, silence where nothing plays."""
        out = np.zeros(int(duration * self.rate), np.float32)
        for start, pcm in self.chunks:
            samples = pcm_to_float(pcm)
            i = round((start - t0) * self.rate)
            if i >= len(out) or i + len(samples) <= 0:
                continue
            lo = max(0, -i)
            hi = min(len(samples), len(out) - i)
            out[i + lo : i + hi] = samples[lo:hi]
        return out


UNDERRUN_SECS = 0.02
"""A gap in answer audio at least this long is a playback underrun."""


def count_underruns(track: Track, *, min_gap: float = UNDERRUN_SECS, max_gap: float = 0.25) -> int:
    """Count playback underruns in a track: answer audio that arrived late.

    An underrun is a chunk that arrived between ``min_gap`` and ``max_gap``
    after the audio before it had finished playing (so the listener heard a
    gap inside an answer); longer gaps are pauses between answers.

    Args:
        track: The heard audio, with its arrival times.
        min_gap: Smallest gap that counts.
        max_gap: Gaps longer than this are pauses, not underruns.

    Returns:
        The number of underruns.
    """
    count = 0
    play_end: float | None = None
    for arrival, (_, pcm) in zip(track.arrivals, track.chunks, strict=True):
        if play_end is not None and min_gap <= arrival - play_end <= max_gap:
            count += 1
        start = arrival if play_end is None else max(arrival, play_end)
        play_end = start + len(pcm) / (2 * track.rate)
    return count


@dataclass
class Turn:
    """One exchange: our utterance and the first answer after it."""

    utterance_start: float
    utterance_end: float
    answer_start: float | None

    @property
    def latency(self) -> float | None:
        """Seconds from the end of our utterance to the first audible answer."""
        return None if self.answer_start is None else self.answer_start - self.utterance_end


def turns(sent: np.ndarray, heard: np.ndarray, rate: int, t0: float = 0.0) -> list[Turn]:
    """Pair each utterance in ``sent`` with the first answer onset in ``heard`` after its end.

    Both arrays are rendered tracks on the same timeline starting at ``t0``.
    An answer counts for a turn when it starts after the utterance ended and
    before the next utterance ends.
    """
    ours = speech_segments(sent, rate)
    answers = speech_segments(heard, rate, min_silence=0.1)
    result = []
    for i, u in enumerate(ours):
        limit = ours[i + 1].end if i + 1 < len(ours) else float("inf")
        onset = next((a.start for a in answers if u.end <= a.start < limit), None)
        result.append(Turn(t0 + u.start, t0 + u.end, None if onset is None else t0 + onset))
    return result


def barge_ins(sent: np.ndarray, heard: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """Where we started talking while the far end was talking, and when it stopped.

    Both arrays are rendered tracks on the same timeline. For each of our
    utterances that starts inside an answer (a stretch of the far end's
    speech, pauses under 0.1 s joined), the pair is our onset and the end of
    that answer, in seconds from the start of the arrays: the far end's
    reaction is the difference.
    """
    ours = speech_segments(sent, rate)
    answers = speech_segments(heard, rate, min_silence=0.1)
    found = []
    for u in ours:
        talked_over = next((a for a in answers if a.start < u.start < a.end), None)
        if talked_over is not None:
            found.append((u.start, talked_over.end))
    return found


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation, None if empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
