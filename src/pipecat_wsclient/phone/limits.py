#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a page may make the phone hold: bounded buffers and a message rate (pure, no I/O).

A page is a program we do not control: it may send audio faster than real
time, junk messages by the thousand, or stop reading. Whatever it does, the
phone holds a few seconds of audio and a few hundred kilobytes of messages
for it, no more; what goes beyond is dropped and counted, or the page's
socket is closed. The limits are here, with no clock of their own (callers
pass ``now``), so they can be tested with a fake one.
"""

from __future__ import annotations

from collections import deque

PAGE_MIC_SECS = 2.0
"""The page's audio waiting to go to the bot, beyond which its oldest is dropped."""

PAGE_TEXT_BYTES = 256 * 1024
"""Messages waiting for a page that does not read, beyond which its socket is closed."""

PAGE_TEXT_MAX_CHARS = 1024
"""The longest text message a page may send (its own are under 100 characters)."""

PAGE_TEXT_RATE = 20.0
"""Text messages a page may send per second, on average (keys, mute, voice onsets)."""

PAGE_TEXT_BURST = 50
"""Text messages a page may send at once."""

REPORTED_BAD_MESSAGES = 10
"""Bad messages from a page named one by one (on the page, in the log); then only counted."""


class DropOldest:
    """Chunks of audio in order, at most ``limit`` bytes: a new chunk pushes the oldest out.

    ``dropped`` counts the bytes pushed out. The newest audio is kept: it is
    what the caller says now.

    Example::

        buffer = DropOldest(2 * 8000 * 2)   # 2 s of 8 kHz 16-bit PCM
        buffer.put(pcm)
        chunk = buffer.get()                # None when empty
    """

    def __init__(self, limit: int):
        """Initialize an empty buffer.

        Args:
            limit: The most bytes held; a chunk larger than that is kept alone.
        """
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self.size = 0
        """Bytes held."""
        self.dropped = 0
        """Bytes pushed out (or cleared) so far."""

    def __len__(self) -> int:
        return len(self._chunks)

    def put(self, chunk: bytes) -> int:
        """Add a chunk; return the bytes that were pushed out for it (0: none)."""
        self._chunks.append(chunk)
        self.size += len(chunk)
        pushed = 0
        while self.size > self.limit and len(self._chunks) > 1:
            old = self._chunks.popleft()
            self.size -= len(old)
            pushed += len(old)
        self.dropped += pushed
        return pushed

    def get(self) -> bytes | None:
        """The oldest chunk, taken out; None when empty."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self.size -= len(chunk)
        return chunk

    def clear(self) -> int:
        """Let go of everything held (not counted in ``dropped``); return its bytes."""
        size, self.size = self.size, 0
        self._chunks.clear()
        return size


class RateLimit:
    """A token bucket: ``rate`` events a second on average, ``burst`` at once.

    Example::

        limit = RateLimit(20.0, 50)
        if not limit.allow(loop.time()):
            ...  # too many: close the page
    """

    def __init__(self, rate: float, burst: int):
        """Initialize a full bucket.

        Args:
            rate: Events allowed per second, on average.
            burst: Events allowed at once (the bucket's size).

        Raises:
            ValueError: If either is not positive.
        """
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be > 0")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Count an event at ``now`` (monotonic seconds); False if it is one too many."""
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Reported:
    """Name the first few of a repeated problem, then only count (never one line per chunk).

    Example::

        bad = Reported(10)
        if bad.add():        # True for the first 10
            logger.warning(...)
    """

    def __init__(self, first: int):
        """Initialize the count.

        Args:
            first: How many are named one by one.
        """
        self.first = first
        self.count = 0

    def add(self) -> bool:
        """Count one; True while it is still to be named."""
        self.count += 1
        return self.count <= self.first

    @property
    def silenced(self) -> bool:
        """Whether the last one counted was the first not named."""
        return self.count == self.first + 1
