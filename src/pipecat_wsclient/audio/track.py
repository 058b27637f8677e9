#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio placed at its playback time, as a far end plays it, and its underruns (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipecat_wsclient.audio.wav import pcm_to_float

Rendered = tuple[float, np.ndarray, np.ndarray]
"""A call on one timeline: its start (monotonic seconds), our audio, the far end's (floats)."""


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

MAX_UNDERRUN_SECS = 0.25
"""A longer gap is a pause between answers, not an underrun."""


def is_underrun(
    late: float, *, min_gap: float = UNDERRUN_SECS, max_gap: float = MAX_UNDERRUN_SECS
) -> bool:
    """Whether a chunk that arrived ``late`` seconds after the audio before it finished is one.

    The listener heard a gap inside an answer: the chunk came between
    ``min_gap`` and ``max_gap`` after the audio before it had finished
    playing; longer gaps are pauses between answers.

    Args:
        late: The chunk's arrival less the end of the audio played before it.
        min_gap: Smallest gap that counts.
        max_gap: Gaps longer than this are pauses, not underruns.
    """
    return min_gap <= late <= max_gap


def count_underruns(
    track: Track, *, min_gap: float = UNDERRUN_SECS, max_gap: float = MAX_UNDERRUN_SECS
) -> int:
    """Count playback underruns in a track: answer audio that arrived late (:func:`is_underrun`).

    The chunks are replayed from their arrival times (the first plays when
    it arrives), so a part of a track counts as if it had been played alone.

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
        if play_end is not None and is_underrun(
            arrival - play_end, min_gap=min_gap, max_gap=max_gap
        ):
            count += 1
        start = arrival if play_end is None else max(arrival, play_end)
        play_end = start + len(pcm) / (2 * track.rate)
    return count


def render_pair(sent: Track, heard: Track) -> Rendered | None:
    """Both sides of a call on one timeline: its start, our audio, the far end's.

    The timeline starts at the first chunk of either track and ends when the
    later one has finished playing; None if neither has audio.
    """
    tracks = [t for t in (sent, heard) if t.chunks]
    if not tracks:
        return None
    t0 = min(track.chunks[0][0] for track in tracks)
    end = max(track.end for track in tracks)
    return t0, sent.render(t0, end - t0), heard.render(t0, end - t0)
