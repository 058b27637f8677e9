#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the output keeps while the connection is down (pure, no I/O).

Audio is bounded by duration (oldest dropped first), other messages by count
(oldest dropped first); everything dropped is counted, so the output can
report it once per outage. Interruptible audio queued before an interruption
is discarded, not replayed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from pipecat.frames.frames import Frame


@dataclass
class HeldFrame:
    """A frame waiting for the connection to come back.

    Parameters:
        frame: What to serialize and send (an audio chunk or a message frame).
        audio_secs: Its audio duration; 0 for messages.
        source_id: Id of the pipeline frame it came from (for interruptions).
        interruptible: Whether an interruption discards it.
        end_silence: Whether it is end silence (the transport's, not the
            bot's audio): never held, not counted as dropped when not sent.
    """

    frame: Frame
    audio_secs: float = 0.0
    source_id: int = 0
    interruptible: bool = False
    end_silence: bool = False


@dataclass
class DropReport:
    """What an outage cost.

    Parameters:
        audio_frames: Audio chunks dropped.
        audio_secs: Seconds of audio dropped.
        audio_bytes: Bytes of audio dropped.
        messages: Non-audio messages dropped.
    """

    audio_frames: int = 0
    audio_secs: float = 0.0
    audio_bytes: int = 0
    messages: int = 0

    def __bool__(self) -> bool:
        return bool(self.audio_frames or self.messages)

    def __str__(self) -> str:
        return (
            f"{self.audio_secs:.2f}s of audio ({self.audio_frames} chunks, "
            f"{self.audio_bytes} bytes) and {self.messages} messages"
        )


class OutageBuffer:
    """Bounded, ordered store of outbound frames during an outage.

    Example::

        buffer = OutageBuffer(max_audio_secs=2.0, max_messages=100)
        buffer.add(HeldFrame(chunk, audio_secs=0.04, source_id=frame.id))
        ...
        for held in buffer.drain():
            send(held.frame)
        report = buffer.take_report()  # what was dropped, once per outage
    """

    def __init__(self, max_audio_secs: float, max_messages: int):
        """Initialize the buffer.

        Args:
            max_audio_secs: Most audio kept, in seconds.
            max_messages: Most non-audio messages kept.
        """
        self._max_audio_secs = max_audio_secs
        self._max_messages = max_messages
        self._items: deque[HeldFrame] = deque()
        self._audio_secs = 0.0
        self._messages = 0
        self._report = DropReport()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def audio_secs(self) -> float:
        """Seconds of audio held."""
        return self._audio_secs

    def add(self, held: HeldFrame) -> None:
        """Keep a frame, dropping the oldest of its kind when over the bound."""
        self._items.append(held)
        if held.audio_secs > 0:
            self._audio_secs += held.audio_secs
            while self._audio_secs > self._max_audio_secs + 1e-9:
                if not self._drop_oldest(audio=True):
                    self._audio_secs = 0.0  # nothing left: only rounding was over
        else:
            self._messages += 1
            while self._messages > self._max_messages and self._drop_oldest(audio=False):
                pass

    def requeue(self, held: HeldFrame) -> None:
        """Put back, first in line, a frame taken by :meth:`drain` that could not be sent."""
        self._items.appendleft(held)
        if held.audio_secs > 0:
            self._audio_secs += held.audio_secs
        else:
            self._messages += 1

    def discard_interrupted(self, before_id: int) -> float:
        """Discard interruptible frames that came from before an interruption.

        Args:
            before_id: Frames whose ``source_id`` is below it are discarded.

        Returns:
            Seconds of audio discarded (an interruption is not a loss: they are
            not counted as dropped).
        """
        kept: deque[HeldFrame] = deque()
        discarded = 0.0
        for held in self._items:
            if held.interruptible and held.source_id < before_id:
                discarded += held.audio_secs
                self._forget(held)
            else:
                kept.append(held)
        self._items = kept
        return discarded

    def drain(self) -> Iterator[HeldFrame]:
        """Yield and remove the held frames, oldest first."""
        while self._items:
            held = self._items.popleft()
            self._forget(held)
            yield held

    def drop_all(self) -> None:
        """Drop everything held, counting it (the connection is not coming back)."""
        while self._items:
            self._count_dropped(self._items.popleft())
        self._audio_secs = 0.0
        self._messages = 0

    def take_report(self) -> DropReport:
        """Return what was dropped since the last report, and start a new one."""
        report, self._report = self._report, DropReport()
        return report

    def _forget(self, held: HeldFrame) -> None:
        if held.audio_secs > 0:
            self._audio_secs -= held.audio_secs
        else:
            self._messages -= 1

    def _drop_oldest(self, *, audio: bool) -> bool:
        for i, held in enumerate(self._items):
            if (held.audio_secs > 0) == audio:
                del self._items[i]
                self._forget(held)
                self._count_dropped(held)
                return True
        return False

    def _count_dropped(self, held: HeldFrame) -> None:
        if held.audio_secs > 0:
            self._report.audio_frames += 1
            self._report.audio_secs += held.audio_secs
            self._report.audio_bytes += len(getattr(held.frame, "audio", b""))
        else:
            self._report.messages += 1
