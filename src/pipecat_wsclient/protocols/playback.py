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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Released:
    """What became due: audio to hand to the pipeline and marks to echo, in order."""

    audio: list[bytes] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)


class PlaybackClock:
    """The carrier's playout queue: audio and marks, played in real time.

    Audio is handed over when its playback starts (``advance``); a mark once
    all audio queued before it has finished playing.

    Example::

        clock = PlaybackClock(bytes_per_sec=32000)
        clock.add_audio(pcm, now)
        clock.add_mark("greeting-done")
        released = clock.advance(now)     # audio whose playback has started,
                                          # marks whose audio has played
        dropped, marks = clock.clear()    # barge-in
    """

    def __init__(self, bytes_per_sec: int):
        """Initialize the clock.

        Args:
            bytes_per_sec: Bytes of queued audio played per second.
        """
        self._bps = bytes_per_sec
        self._queue: deque[tuple[str, bytes | str]] = deque()
        self._play_end = 0.0  # when what has been started finishes playing
        self.played_bytes = 0
        self.cleared_bytes = 0

    @property
    def queued_secs(self) -> float:
        """Seconds of audio queued and not started yet."""
        return sum(len(item) for kind, item in self._queue if kind == "audio") / self._bps

    def add_audio(self, pcm: bytes, now: float) -> None:
        """Queue audio to play after what is queued already."""
        if not self._queue and self._play_end < now:
            self._play_end = now
        self._queue.append(("audio", pcm))

    def add_mark(self, name: str) -> None:
        """Queue a mark: it is released when the audio queued before it has played."""
        self._queue.append(("mark", name))

    def advance(self, now: float) -> Released:
        """Start playing what is due at ``now``; release marks whose audio has played."""
        released = Released()
        while self._queue:
            kind, item = self._queue[0]
            if kind == "mark":
                if self._play_end > now:
                    break
                released.marks.append(str(item))
            else:
                if self._play_end > now:
                    break
                assert isinstance(item, bytes)
                self._play_end = max(self._play_end, now) + len(item) / self._bps
                self.played_bytes += len(item)
                released.audio.append(item)
            self._queue.popleft()
        return released

    def clear(self) -> Released:
        """Drop the audio not started yet; release every pending mark.

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
        return released
