#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Real-time pacing of outbound audio on an absolute schedule.

No I/O and no clock of its own: callers pass ``now`` (the event loop's
monotonic time) and sleep for the delay they get back, so the schedule can be
tested with a fake clock.
"""

from __future__ import annotations

DEFAULT_LEAD_SECS = 0.1
DEFAULT_MAX_LAG_SECS = 0.1


class PaceClock:
    """Decide when each chunk of audio may be sent.

    Chunk ``k`` of a stream goes out no earlier than ``start + sent_k - lead``,
    where ``sent_k`` is the audio duration sent before it. Because the
    schedule is absolute, a late wake-up is made up by the next chunk instead
    of adding up into drift.

    The schedule restarts (``start = now``) when the stream has fallen more
    than ``max_lag_secs`` behind it: the producer went idle (the bot stopped
    talking) or stalled, so the far end has already run dry and there is
    nothing to catch up. :meth:`reset` restarts it explicitly (interruption).

    Example::

        clock = PaceClock(lead_secs=0.1)
        for chunk in chunks:
            await asyncio.sleep(clock.delay(loop.time()))
            send(chunk)
            clock.sent(chunk_duration)
    """

    def __init__(
        self,
        lead_secs: float = DEFAULT_LEAD_SECS,
        max_lag_secs: float = DEFAULT_MAX_LAG_SECS,
    ):
        """Initialize the clock.

        Args:
            lead_secs: How far ahead of real time audio may be sent, so the far
                end has a little buffered and never starves. 0 sends exactly on
                time.
            max_lag_secs: How far behind the schedule the stream may fall before
                the schedule restarts instead of catching up.

        Raises:
            ValueError: If either value is negative.
        """
        if lead_secs < 0 or max_lag_secs < 0:
            raise ValueError("lead_secs and max_lag_secs must be >= 0")
        self._lead = lead_secs
        self._max_lag = max_lag_secs
        self._start: float | None = None
        self._sent = 0.0
        self._resets = 0

    @property
    def running(self) -> bool:
        """Whether a schedule is in progress (audio sent since the last reset)."""
        return self._start is not None

    @property
    def resets(self) -> int:
        """How many times :meth:`reset` was called; pass it to :meth:`sent`."""
        return self._resets

    @property
    def sent_secs(self) -> float:
        """Audio duration sent on the current schedule, in seconds."""
        return self._sent

    def delay(self, now: float) -> float:
        """Return how long to wait before sending the next chunk.

        Args:
            now: The current monotonic time, in seconds.

        Returns:
            Seconds to wait (0 when the chunk may go now).
        """
        if self._start is None or now - (self._start + self._sent) > self._max_lag:
            self._start = now
            self._sent = 0.0
        return max(0.0, self._start + self._sent - self._lead - now)

    def ahead(self, now: float) -> float:
        """Return how much of the audio sent is still to play at the far end.

        Args:
            now: The current monotonic time, in seconds.

        Returns:
            Seconds (0 when nothing sent is left to play, or nothing was sent).
        """
        if self._start is None:
            return 0.0
        return max(0.0, self._start + self._sent - now)

    def sent(self, duration: float, *, resets: int | None = None) -> None:
        """Account for a chunk that was just sent.

        A send can straddle a :meth:`reset` (an interruption while the chunk
        was being written): pass the :attr:`resets` read after
        :meth:`delay`, and a chunk of the schedule before the reset is not
        added to the next one.

        Args:
            duration: The chunk's audio duration, in seconds.
            resets: :attr:`resets` when the chunk was scheduled.

        Raises:
            RuntimeError: If no chunk was scheduled (:meth:`delay` not called)
                and ``resets`` is not given.
        """
        if resets is not None and resets != self._resets:
            return
        if self._start is None:
            raise RuntimeError("PaceClock.sent() called before delay()")
        self._sent += duration

    def reset(self) -> None:
        """Forget the schedule; the next chunk starts a new one."""
        self._start = None
        self._sent = 0.0
        self._resets += 1


def pcm_duration(num_bytes: int, sample_rate: int, num_channels: int) -> float:
    """Return the duration of 16-bit PCM audio.

    Args:
        num_bytes: Length of the audio in bytes.
        sample_rate: Samples per second, per channel.
        num_channels: Interleaved channels.

    Returns:
        The duration in seconds.
    """
    return num_bytes / (2 * sample_rate * num_channels)
