#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Flow control toward Asterisk: XOFF/XON, the queue estimate, the hold queue (pure).

Asterisk queues the bot's frames and plays one per ptime; it sends
``MEDIA_XOFF`` when its queue is long and ``MEDIA_XON`` when it has drained,
and drops whole messages that arrive while the queue is full [WS-DOC "Max
Message Size and Flow Control"; WS-SRC]. :class:`FlowControl` decides what
may be sent now and holds the rest, in order. It does no I/O and reads no
clock: every method that needs the time takes ``now`` (seconds, monotonic).
"""

from __future__ import annotations

from collections import deque

QUEUE_LENGTH_MAX = 1000
"""Frames Asterisk queues at most; a BINARY message arriving while the queue is
this long is ignored whole [WS-DOC "about 1000"; WS-SRC ``QUEUE_LENGTH_MAX``]."""

QUEUE_XOFF_LEVEL = 900
"""Queue length at which Asterisk sends ``MEDIA_XOFF`` [WS-DOC "about 900";
WS-SRC ``QUEUE_LENGTH_XOFF_LEVEL``; also reported as ``xoff_level`` in ``STATUS``]."""

QUEUE_XON_LEVEL = 800
"""Asterisk sends ``MEDIA_XON`` once the queue drops below this [WS-DOC "below
about 800"; WS-SRC ``QUEUE_LENGTH_XON_LEVEL``; ``xon_level`` in ``STATUS``]."""

DEFAULT_MAX_QUEUED_FRAMES = (QUEUE_XOFF_LEVEL + QUEUE_LENGTH_MAX) // 2
"""950: what we let Asterisk's queue reach (by our estimate) before holding audio."""

DEFAULT_RESUME_QUEUED_FRAMES = (QUEUE_XON_LEVEL + QUEUE_XOFF_LEVEL) // 2
"""850: the bound after the first ``MEDIA_XOFF``, between the XON and XOFF levels."""


class FlowControl:
    """What may go to Asterisk now, and the messages held until it may.

    The queue estimate is the frames sent minus one frame played per ptime
    (kept as the time Asterisk's queue plays out). Audio may go while the
    estimate stays within the bound: ``max_queued_frames`` at first,
    ``resume_queued_frames`` after the first ``MEDIA_XOFF``. While paused (an
    XOFF not yet followed by XON) no audio goes. Text messages (commands)
    always may, unless something is held before them.

    Example::

        flow = FlowControl(max_queued_frames=950, resume_queued_frames=850)
        flow.start(frame_bytes=160, ptime=0.02, sample_rate=8000, sample_width=1)
        if not flow.holding and flow.may_send(audio, now):
            flow.note_sent(audio, now)   # ... and send it
        else:
            flow.hold(audio)
        while (message := flow.release(now)) is not None:
            ...                          # send it
    """

    def __init__(
        self,
        *,
        max_queued_frames: int | None = DEFAULT_MAX_QUEUED_FRAMES,
        resume_queued_frames: int = DEFAULT_RESUME_QUEUED_FRAMES,
        max_held_secs: float | None = None,
    ):
        """Initialize for a new stream, before ``MEDIA_START``.

        Args:
            max_queued_frames: Most frames Asterisk's queue may hold by our
                estimate; None to rely on ``MEDIA_XOFF`` alone.
            resume_queued_frames: The bound after the first ``MEDIA_XOFF``.
            max_held_secs: Most audio held (the oldest is dropped beyond);
                None for no bound.
        """
        self.cap = max_queued_frames
        """The bound on the queue estimate now (None: no bound)."""
        self.resume_queued_frames = resume_queued_frames
        self.max_held_secs = max_held_secs
        self.frame_bytes = 0
        self.ptime = 0.02
        self.sample_rate = 0
        self.sample_width = 0
        self.xon_level = QUEUE_XON_LEVEL
        """Where ``MEDIA_XON`` re-anchors the estimate (``STATUS`` may update it)."""
        self.paused = False
        self.paused_since = 0.0
        self.playout_end = 0.0
        """When, by our estimate, Asterisk has played all it queues."""
        self.held: deque[str | bytes] = deque()
        self.held_bytes = 0
        self.flushed_since_xoff = False
        """Whether ``FLUSH_MEDIA`` went out since the last ``MEDIA_XOFF`` (see :meth:`on_xon`)."""

    def start(self, *, frame_bytes: int, ptime: float, sample_rate: int, sample_width: int) -> None:
        """``MEDIA_START``: the stream's frame size (bytes), ptime (s) and sample format."""
        self.frame_bytes = frame_bytes
        self.ptime = ptime
        self.sample_rate = sample_rate
        self.sample_width = sample_width
        self.playout_end = 0.0

    # -- the queue estimate ---------------------------------------------------------

    def frames(self, nbytes: int) -> int:
        """Whole frames in ``nbytes`` (0 before ``MEDIA_START``)."""
        return nbytes // self.frame_bytes if self.frame_bytes else 0

    def secs(self, nbytes: int) -> float:
        """Seconds of audio in ``nbytes`` (0 before ``MEDIA_START``)."""
        if not self.sample_rate:
            return 0.0
        return nbytes / (self.sample_rate * self.sample_width)

    def queued_frames(self, now: float) -> float:
        """Our estimate of Asterisk's queue at ``now``, in frames."""
        return max(0.0, self.playout_end - now) / self.ptime

    def has_room(self, nbytes: int, now: float) -> bool:
        """Whether ``nbytes`` of audio fit under the bound at ``now``."""
        return self.cap is None or self.queued_frames(now) + self.frames(nbytes) <= self.cap

    def may_send(self, message: str | bytes, now: float) -> bool:
        """Whether a message may go now, if nothing is held before it."""
        if isinstance(message, str):
            return True
        return not self.paused and self.has_room(len(message), now)

    def note_sent(self, message: str | bytes, now: float) -> None:
        """A message went out at ``now``: audio lengthens Asterisk's queue."""
        if isinstance(message, bytes):
            frames = self.frames(len(message))
            self.playout_end = max(self.playout_end, now) + frames * self.ptime

    # -- Asterisk's events ----------------------------------------------------------

    def on_xoff(self, now: float) -> None:
        """``MEDIA_XOFF``: pause, and keep the queue below the resume level from now on."""
        if not self.paused:
            self.paused = True
            self.paused_since = now
        self.flushed_since_xoff = False
        if self.cap is not None:
            self.cap = min(self.cap, self.resume_queued_frames)

    def on_xon(self, now: float) -> float:
        """``MEDIA_XON``: resume; re-anchor the estimate just below the XON level.

        Unless ``FLUSH_MEDIA`` went out since the ``MEDIA_XOFF``: Asterisk
        emptied its queue then, and answers a flush during XOFF with XON on
        its next tick (the queue is below the XON level because it is empty).
        Our estimate (what we sent since the flush) is then the better one,
        and the XON may only lower it.

        Returns:
            How long we were paused (0 if we were not).
        """
        paused_secs = 0.0
        if self.paused:
            self.paused = False
            paused_secs = now - self.paused_since
        # XON is sent when the queue has just dropped below the XON level: a
        # known point to re-anchor our estimate of it [WS-SRC ``dequeue_frame``].
        anchor = now + (self.xon_level - 1) * self.ptime
        if self.flushed_since_xoff:
            self.playout_end = min(self.playout_end, anchor)
        else:
            self.playout_end = anchor
        self.flushed_since_xoff = False
        return paused_secs

    def on_flush(self, now: float) -> None:
        """``FLUSH_MEDIA`` sent: Asterisk drops its whole queue (the estimate is 0)."""
        self.playout_end = now
        self.flushed_since_xoff = True

    # -- the hold queue ---------------------------------------------------------------

    @property
    def holding(self) -> bool:
        """Whether anything is held."""
        return bool(self.held)

    @property
    def held_secs(self) -> float:
        """Seconds of audio held."""
        return self.secs(self.held_bytes)

    def hold(self, message: str | bytes) -> int:
        """Hold a message behind what is already held.

        Returns:
            Bytes of the oldest held audio dropped to stay within ``max_held_secs``.
        """
        self.held.append(message)
        if not isinstance(message, bytes):
            return 0
        self.held_bytes += len(message)
        if self.max_held_secs is None or not self.sample_rate:
            return 0
        limit = int(self.max_held_secs * self.sample_rate * self.sample_width)
        dropped = 0
        while self.held_bytes > limit:
            index = next((i for i, m in enumerate(self.held) if isinstance(m, bytes)), None)
            if index is None:
                break
            oldest = self.held[index]
            del self.held[index]
            self.held_bytes -= len(oldest)
            dropped += len(oldest)
        return dropped

    def release(self, now: float, *, ignore_pause: bool = False) -> str | bytes | None:
        """The next held message if it may go at ``now`` (taken off the queue and noted sent).

        Args:
            now: The time.
            ignore_pause: Release even while paused (at the end of the call,
                when no ``MEDIA_XON`` can reach us any more).

        Returns:
            The message, or None if nothing is held or the first one must wait.
        """
        if not self.held or (self.paused and not ignore_pause):
            return None
        message = self.held[0]
        if isinstance(message, bytes) and not self.has_room(len(message), now):
            return None
        self.held.popleft()
        if isinstance(message, bytes):
            self.held_bytes -= len(message)
            self.note_sent(message, now)
        return message

    def clear(self) -> int:
        """Drop everything held; return the bytes of audio dropped."""
        dropped = self.held_bytes
        self.held.clear()
        self.held_bytes = 0
        return dropped
