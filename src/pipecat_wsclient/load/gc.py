#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Full garbage collections on the load generator's terms, not in the middle of its callers.

CPython's collector scans every object it tracks in a full collection (its
oldest generation). Each caller of a load run holds a Pipecat pipeline,
about 1,900 objects: with 200 callers, 380,000, and a full collection held
the event loop for up to 200 ms, five times while they were starting. No
caller sent or timed anything meanwhile, and the run reported response p99
480 ms against a server that answers after exactly 300 ms.

So while a load runs, the collector's own trigger for full collections is
off (young collections, a few ms at most, still run as usual); a call left
about 800 objects in reference cycles that only a full collection frees
(about 1 MB), so one is made every ``every_calls`` ended calls, and timed:
a pause longer than the lag limit is reported as a warning. With the
trigger off, the same 200 callers reported p99 300 ms (loop lag p99 3 ms).
The collector's thresholds are put back when the run ends.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

COLLECT_EVERY_CALLS = 500
"""Ended calls between two full collections (bounds the garbage held: ~0.5 GB)."""

_NEVER = 2**31 - 1


class FullCollections:
    """Defers full collections during a load run; makes them every so many ended calls.

    Example::

        collections = FullCollections()
        collections.start()
        try:
            ...                      # each ended call: collections.call_ended()
        finally:
            collections.stop()
        collections.pauses           # seconds each full collection took
    """

    def __init__(
        self,
        every_calls: int = COLLECT_EVERY_CALLS,
        *,
        collect: Callable[[], object] = gc.collect,
        clock: Callable[[], float] = time.perf_counter,
    ):
        """Initialize, not started.

        Args:
            every_calls: Ended calls between two full collections.
            collect: Makes a full collection (tests pass a fake).
            clock: Times it.
        """
        if every_calls < 1:
            raise ValueError(f"every_calls must be at least 1, not {every_calls}")
        self._every = every_calls
        self._collect = collect
        self._clock = clock
        self._ended = 0
        self._saved: tuple[int, int, int] | None = None
        self.pauses: list[float] = []
        """Seconds each full collection made here took, in order."""

    def start(self) -> None:
        """Turn the collector's own full collections off (young ones go on)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, _NEVER)

    def stop(self) -> None:
        """Put the collector's thresholds back."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def call_ended(self) -> None:
        """Count an ended call; every ``every_calls``, make a full collection now."""
        self._ended += 1
        if self._ended % self._every == 0:
            started = self._clock()
            self._collect()
            self.pauses.append(self._clock() - started)
