#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Tell a ping flood from keepalive: a token bucket over a server's pings (pure, no I/O).

A server pings to keep a connection alive, once every few seconds (websockets
every 20 s, browsers' and Pipecat's servers about as often). Each ping we
receive costs a frame to parse and a pong to write, so a server that sends
them as fast as it can takes the whole event loop: measured, the call's
audio went from real time to nothing. Answering at most N pings a second
would not help, since reading the flood alone costs the loop; the bound is
to stop reading it. :class:`PingFloodGuard` counts the pings (and
unsolicited pongs, which cost the parse too) and says when they come faster
than a rate, sustained, with a burst allowed; the connection (``dial.py``)
then closes with 1008 (policy violation) and the reason
:data:`PING_FLOOD_REASON`, and the rest of what the server sent is discarded
unread. ``failures.py`` reports it.
"""

from __future__ import annotations

DEFAULT_MAX_PINGS_PER_SEC = 50.0
"""The default bound: a ping every 20 ms, sustained. No keepalive comes near it."""

BURST_SECS = 2.0
"""The burst allowed on top of the rate, in seconds' worth of pings at that rate."""

PING_FLOOD_REASON = "ping flood"
"""The close reason we send (with figures after a colon); ``failures.py`` looks for it."""


class PingFloodGuard:
    """A token bucket over the control frames one connection receives.

    The bucket holds ``burst`` tokens and refills at ``max_per_sec``; each
    ping (or pong) takes one. It is empty only when pings came faster than
    ``max_per_sec`` for long enough to use up the burst: a server pinging at
    the rate or slower, with any jitter the burst absorbs, never empties it.
    Time is given by the caller (the event loop's clock), so it is tested
    with a fake one.

    Example::

        guard = PingFloodGuard(max_per_sec=50.0)
        if guard.received(loop.time()):  # True from the frame that empties it
            close(1008, guard.reason())

    Attributes:
        max_per_sec: The sustained rate allowed.
        burst: Frames allowed at once, on top of the rate.
        count: Frames counted so far.
        flooded: Whether the bucket was ever emptied.
    """

    __slots__ = ("_first", "_last", "_tokens", "burst", "count", "flooded", "max_per_sec")

    def __init__(self, max_per_sec: float = DEFAULT_MAX_PINGS_PER_SEC, burst: float | None = None):
        """Initialize the guard, its bucket full.

        Args:
            max_per_sec: The sustained rate allowed, in frames per second.
            burst: Frames allowed at once; by default :data:`BURST_SECS` worth
                at ``max_per_sec`` (100 at the default rate), at least 1.

        Raises:
            ValueError: If ``max_per_sec`` or ``burst`` is not positive.
        """
        if max_per_sec <= 0:
            raise ValueError(f"max_per_sec must be positive, not {max_per_sec}")
        if burst is None:
            burst = max(max_per_sec * BURST_SECS, 1.0)
        if burst <= 0:
            raise ValueError(f"burst must be positive, not {burst}")
        self.max_per_sec = max_per_sec
        self.burst = burst
        self.count = 0
        self.flooded = False
        self._tokens = burst
        self._first: float | None = None
        self._last: float | None = None

    def received(self, now: float) -> bool:
        """Count one frame received at ``now``.

        Args:
            now: A monotonic time in seconds (the event loop's clock).

        Returns:
            True if this frame is over the bound: the connection is flooded.
        """
        self.count += 1
        last = self._last
        if last is None:
            self._first = self._last = now
        elif now > last:  # a clock that went back adds nothing
            self._tokens = min(self.burst, self._tokens + (now - last) * self.max_per_sec)
            self._last = now
        self._tokens -= 1.0
        if self._tokens < 0.0:
            self.flooded = True
            return True
        return False

    def reason(self) -> str:
        """The close reason for a flood: ``"ping flood: 101 in 0.002 s"`` (under 123 bytes).

        Returns:
            :data:`PING_FLOOD_REASON` with the frames counted and over how long.
        """
        span = 0.0 if self._first is None or self._last is None else self._last - self._first
        return f"{PING_FLOOD_REASON}: {self.count} in {span:.3f} s"
