#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The turn engine's bookkeeping on 20 ms windows (pure, no I/O).

:class:`_Stretches` joins one side's voiced windows into stretches across
short pauses; :class:`_Pending` holds audio not yet judged. Private to
:mod:`pipecat_wsclient.audio.turns`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from pipecat_wsclient.audio.levels import WINDOW_SECS


@dataclass
class _Stretch:
    """Voiced windows joined across short pauses: ``[start, end)`` in window numbers."""

    start: int
    end: int
    cut: float | None = None
    """The clear that ended it (None: silence or the end of the call did)."""


class _Stretches:
    """One side's stretches of speech, a window at a time (pure bookkeeping on window flags).

    Voiced windows are joined across pauses shorter than ``min_silence``; a
    stretch is kept when at least ``min_speech`` long. A stretch ends once
    ``min_silence`` of unvoiced windows followed it (or at :meth:`finish`).
    """

    def __init__(self, min_silence: float, min_speech: float):
        self._gap = round(min_silence / WINDOW_SECS)  # unvoiced windows that end a stretch
        self._min_speech = min_speech
        self.count = 0
        """Windows judged so far."""
        self.done: list[_Stretch] = []
        """The kept stretches that have ended, in order."""
        self.starts: list[int] = []
        """Their starts (for bisecting)."""
        self.open: _Stretch | None = None
        """The stretch going on, kept or not yet, with its end so far."""

    def long_enough(self, s: _Stretch) -> bool:
        """Whether ``s`` is kept (its length from window times, as they always were)."""
        return s.end * WINDOW_SECS - s.start * WINDOW_SECS >= self._min_speech - 1e-9

    @property
    def open_kept(self) -> _Stretch | None:
        """The stretch going on, if already long enough to be kept."""
        s = self.open
        return s if s is not None and self.long_enough(s) else None

    def push(self, voiced: bool, cut: float | None = None) -> None:
        """Judge the next window; ``cut``: a clear came before it (the stretch going on ends)."""
        if cut is not None and self.open is not None:
            self.open.cut = cut
            self._close()
        k = self.count
        self.count += 1
        s = self.open
        if voiced:
            if s is not None and k - (s.end - 1) > self._gap:
                self._close()
                s = None
            if s is None:
                self.open = _Stretch(k, k + 1)
            else:
                s.end = k + 1
        elif s is not None and k - (s.end - 1) >= self._gap:
            self._close()  # no voiced window can join it any more

    def finish(self) -> None:
        """End the stretch going on (the audio is over)."""
        self._close()

    def _close(self) -> None:
        s, self.open = self.open, None
        if s is not None and self.long_enough(s):
            self.done.append(s)
            self.starts.append(s.start)

    def first_from(self, k: int) -> _Stretch | None:
        """The first kept stretch starting at or after window ``k``, as far as known."""
        i = bisect_left(self.starts, k)
        if i < len(self.done):
            return self.done[i]
        s = self.open_kept
        return s if s is not None and s.start >= k else None

    def settled_before(self, k: int) -> bool:
        """Whether every kept stretch starting before window ``k`` is known to be one."""
        s = self.open
        return self.count >= k and (s is None or s.start >= k or self.long_enough(s))


class _Pending:
    """One side's audio not judged yet: float samples placed at sample offsets on the grid."""

    def __init__(self) -> None:
        self._chunks: list[tuple[int, np.ndarray]] = []

    def add(self, at: int, samples: np.ndarray) -> None:
        """Place ``samples`` from sample ``at`` (later chunks overwrite earlier ones)."""
        self._chunks.append((at, samples))

    def samples(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``[lo, hi)``, silence where nothing plays."""
        out = np.zeros(hi - lo, np.float32)
        for at, samples in self._chunks:
            i = at - lo
            if i >= len(out) or i + len(samples) <= 0:
                continue
            a, b = max(0, -i), min(len(samples), len(out) - i)
            out[i + a : i + b] = samples[a:b]
        return out

    def forget(self, before: int) -> None:
        """Drop the chunks that end by sample ``before`` (judged)."""
        self._chunks = [(at, s) for at, s in self._chunks if at + len(s) > before]
