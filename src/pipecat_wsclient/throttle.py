#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Rate limiting for repeated log lines (pure; the caller passes the time)."""

from __future__ import annotations


class LogThrottle:
    """Let a repeated event be logged at most once per interval.

    Example::

        throttle = LogThrottle(interval_secs=5.0)
        suppressed = throttle.allow(loop.time())
        if suppressed is not None:
            logger.warning(f"bad message ({suppressed} more suppressed)")
    """

    def __init__(self, interval_secs: float = 5.0):
        """Initialize the throttle.

        Args:
            interval_secs: Minimum time between two logged events.
        """
        self._interval = interval_secs
        self._last: float | None = None
        self._suppressed = 0

    def allow(self, now: float) -> int | None:
        """Record an event and say whether to log it.

        Args:
            now: The current monotonic time, in seconds.

        Returns:
            ``None`` to stay quiet, or the number of events suppressed since
            the last one logged.
        """
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return None
        self._last = now
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
