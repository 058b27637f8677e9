#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The load generator's own health, to tell whether its figures can be trusted (pure, no I/O).

``load`` runs every caller in one process, on one event loop. When that
loop is late (busy with other callers) every timestamp it takes is late
too: response latencies grow and underruns appear that the bot did not
cause. So while a load runs we measure the generator itself:

- **event-loop lag**: a probe asks to wake every ``interval`` and notes how
  late it woke (:meth:`Health.add_wakeup`);
- **CPU**: the process's CPU seconds over wall seconds, per probe
  (:meth:`Health.add_cpu`); 100 % is one core, all an asyncio loop can use.

:meth:`Health.warnings` says, in words, when the figures can no longer be
trusted: CPU above 90 % (as Locust warns) or loop lag p99 above 20 ms, over
the whole run or in the last few seconds. The sampler that feeds it is
:class:`~pipecat_wsclient.load.run.HealthProbe`; this module has no clock of
its own, so a fake clock tests it.

Example::

    health = Health()
    health.add_wakeup(expected=10.0, woke=10.004)
    health.add_cpu(cpu_secs=0.05, wall_secs=0.1)
    health.warnings()   # [] while all is well
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CPU_LIMIT = 0.9
"""Above this share of one core, the generator is saturated (Locust warns at 90 %)."""

LAG_LIMIT_SECS = 0.02
"""Loop lag p99 above this, and latency figures are off by as much."""

RECENT_SECS = 5.0
"""The live view's window."""


@dataclass
class HealthFigures:
    """The generator's health over a stretch of the run."""

    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    cpu_mean: float | None
    """Share of one core, 0-1 (can exceed 1 with threads)."""
    cpu_max: float | None
    samples: int

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain data for ``--json``."""
        return {
            "loop_lag_p50_ms": self.lag_p50_ms,
            "loop_lag_p99_ms": self.lag_p99_ms,
            "loop_lag_max_ms": self.lag_max_ms,
            "cpu_mean": self.cpu_mean,
            "cpu_max": self.cpu_max,
            "samples": self.samples,
        }


class Health:
    """Loop lag and CPU samples, over the run and in the last :data:`RECENT_SECS`."""

    def __init__(self, *, recent_secs: float = RECENT_SECS):
        """Initialize with no samples.

        Args:
            recent_secs: How far back the recent figures look.
        """
        self._recent_secs = recent_secs
        self._lags: list[float] = []
        self._cpu: list[float] = []
        self._cpu_wall = 0.0
        self._cpu_total = 0.0
        self._recent_lags: deque[tuple[float, float]] = deque()
        self._recent_cpu: deque[tuple[float, float, float]] = deque()
        self._now = 0.0

    def add_wakeup(self, expected: float, woke: float) -> None:
        """The probe asked to wake at ``expected`` and woke at ``woke``."""
        lag = max(0.0, woke - expected)
        self._lags.append(lag)
        self._now = max(self._now, woke)
        self._recent_lags.append((woke, lag))
        self._trim()

    def add_cpu(self, cpu_secs: float, wall_secs: float, at: float | None = None) -> None:
        """The process used ``cpu_secs`` of CPU in the last ``wall_secs`` (ending at ``at``)."""
        if wall_secs <= 0:
            return
        self._cpu.append(cpu_secs / wall_secs)
        self._cpu_total += cpu_secs
        self._cpu_wall += wall_secs
        if at is not None:
            self._now = max(self._now, at)
        self._recent_cpu.append((self._now, cpu_secs, wall_secs))
        self._trim()

    def _trim(self) -> None:
        since = self._now - self._recent_secs
        while self._recent_lags and self._recent_lags[0][0] < since:
            self._recent_lags.popleft()
        while self._recent_cpu and self._recent_cpu[0][0] < since:
            self._recent_cpu.popleft()

    def overall(self) -> HealthFigures:
        """Over the whole run."""
        cpu_mean = self._cpu_total / self._cpu_wall if self._cpu_wall else None
        return _figures(self._lags, cpu_mean, max(self._cpu, default=None))

    def recent(self) -> HealthFigures:
        """Over the last :data:`RECENT_SECS` (the live view)."""
        wall = sum(w for _, _, w in self._recent_cpu)
        cpu = sum(c for _, c, _ in self._recent_cpu)
        shares = [c / w for _, c, w in self._recent_cpu]
        return _figures(
            [lag for _, lag in self._recent_lags],
            cpu / wall if wall else None,
            max(shares, default=None),
        )

    def warnings(self, *, recent: bool = False, gc_pauses: Sequence[float] = ()) -> list[str]:
        """Why the figures cannot be trusted, in words; empty while they can.

        Args:
            recent: Judge the last :data:`RECENT_SECS` (live view) instead of the run.
            gc_pauses: Seconds each full garbage collection held the loop
                (:mod:`.load_gc`); those over the lag limit are reported.
        """
        figures = self.recent() if recent else self.overall()
        found = []
        if figures.cpu_mean is not None and figures.cpu_mean > CPU_LIMIT:
            found.append(
                f"the load generator used {figures.cpu_mean:.0%} of a core "
                f"(over {CPU_LIMIT:.0%}): it is saturated"
            )
        if figures.lag_p99_ms is not None and figures.lag_p99_ms > LAG_LIMIT_SECS * 1e3:
            found.append(
                f"its event loop ran late (lag p99 {figures.lag_p99_ms:.0f} ms, over "
                f"{LAG_LIMIT_SECS * 1e3:.0f} ms): the latencies and underruns it reports "
                "may be off by as much"
            )
        long_pauses = [p for p in gc_pauses if p > LAG_LIMIT_SECS]
        if long_pauses:
            found.append(
                f"{len(long_pauses)} full garbage collection(s) held its event loop for up to "
                f"{max(long_pauses) * 1e3:.0f} ms: calls going on then are off by as much"
            )
        if found:
            found.append("use fewer callers, or --processes to spread them over cores")
        return found


def _figures(lags: list[float], cpu_mean: float | None, cpu_max: float | None) -> HealthFigures:
    if not lags:
        return HealthFigures(None, None, None, cpu_mean, cpu_max, 0)
    ms = np.asarray(lags) * 1e3
    return HealthFigures(
        lag_p50_ms=float(np.percentile(ms, 50)),
        lag_p99_ms=float(np.percentile(ms, 99)),
        lag_max_ms=float(ms.max()),
        cpu_mean=cpu_mean,
        cpu_max=cpu_max,
        samples=len(lags),
    )
