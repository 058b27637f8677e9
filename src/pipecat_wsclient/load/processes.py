#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``load --processes N``: the callers spread over N worker processes on this machine.

One event loop carries only so many callers (``load`` says when its own
figures stop being trustworthy, :mod:`.health`). With ``--processes N``, N
workers (``python -m pipecat_wsclient.load.worker``) each run a share of
the load (:func:`shares`): their options go in as JSON on stdin (headers and
the auth token stay out of every process's command line), and they write
JSON lines on stdout: progress twice a second, then every call's result,
their active-calls timeline and their own health. :class:`ProcessLoad`
merges them into one :class:`LoadReport`; a worker that fails is an error
that names it. Locust stays the way beyond one machine.

Stopping (Ctrl-C, SIGTERM): the workers get SIGINT and report what they
did; one that has not ended :data:`STOP_GRACE_SECS` later is killed (its
calls are left out). The workers' stdin stays open while the run lasts: a
worker whose parent is gone (killed, forced out) sees it close and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import asdict, replace
from typing import Any

from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.caller.signals import on_forced_exit
from pipecat_wsclient.load.health import HealthFigures
from pipecat_wsclient.load.run import LoadOptions, LoadReport, LoadRun

LINE_LIMIT = 1 << 26
"""Longest line a worker may write (its results, at the end)."""

STOP_GRACE_SECS = 2.0
"""After a stop, how long a worker has to report before it is killed."""


class WorkerFailed(RuntimeError):
    """A worker process failed; the message names it and its last words."""


def shares(options: LoadOptions, processes: int) -> list[LoadOptions]:
    """Split a load into ``processes`` shares (pure).

    Calls, concurrency and ramp are divided as evenly as whole numbers allow
    (the first shares get the remainders); a share with no calls or no
    concurrency is left out. The duration, endpoints and script are the same.

    Raises:
        ValueError: For fewer than 1 process, or with a scenario (not
            supported across processes yet).
    """
    if processes < 1:
        raise ValueError(f"--processes must be at least 1, not {processes}")
    if options.scenario is not None:
        raise ValueError("--processes does not take --scenario yet: run one process")

    def part(total: int, i: int) -> int:
        return total // processes + (1 if i < total % processes else 0)

    result = []
    for i in range(processes):
        share = replace(
            options,
            calls=None if options.calls is None else part(options.calls, i),
            concurrency=part(options.concurrency, i),
            ramp=options.ramp / processes,
        )
        if share.concurrency > 0 and share.calls != 0:
            result.append(share)
    return result


def options_json(options: LoadOptions) -> str:
    """A share's options for a worker's stdin (the headers and the auth token with them)."""
    data = asdict(options)
    data["clips"] = [str(p) for p in options.clips]
    data.pop("scenario")
    return json.dumps(data)


class _Workers:
    """What the workers said so far: progress, health, and at the end their results."""

    def __init__(self) -> None:
        self.progress: dict[int, dict[str, Any]] = {}
        self.done: dict[int, dict[str, Any]] = {}

    def recent(self) -> HealthFigures:
        """The busiest worker's recent health (for the live view)."""
        return _worst([p.get("recent", {}) for p in self.progress.values()])

    def warnings(self, *, recent: bool = False) -> list[str]:
        """Each worker's warnings, named by its number."""
        source = self.progress if recent else self.done
        key = "recent_warnings" if recent else "warnings"
        return [
            f"process {n}: {w}" for n, data in sorted(source.items()) for w in data.get(key, [])
        ]


def _worst(figures: list[dict[str, Any]]) -> HealthFigures:
    def top(key: str) -> float | None:
        values = [f[key] for f in figures if f.get(key) is not None]
        return max(values) if values else None

    return HealthFigures(
        lag_p50_ms=top("loop_lag_p50_ms"),
        lag_p99_ms=top("loop_lag_p99_ms"),
        lag_max_ms=top("loop_lag_max_ms"),
        cpu_mean=top("cpu_mean"),
        cpu_max=top("cpu_max"),
        samples=sum(int(f.get("samples") or 0) for f in figures),
    )


class ProcessLoad:
    """A load run by worker processes, seen as one run (what the live view and report use)."""

    def __init__(self, options: LoadOptions, processes: int):
        """Split the load; nothing starts until :meth:`run`.

        Raises:
            ValueError: For a bad split (see :func:`shares`) or an unreadable clip.
        """
        self.options = options
        self.shares = shares(options, processes)
        self.health = _Workers()
        self._merged = LoadRun(options)  # reads the clips: a bad one is a usage error now
        self.processes: list[asyncio.subprocess.Process] = []
        """The workers, once started."""

    @property
    def active(self) -> int:
        """Calls in progress, over all workers."""
        return sum(int(p.get("active", 0)) for p in self.health.progress.values())

    def report(self) -> LoadReport:
        """The merged report: percentiles over every worker's calls."""
        report = self._merged.report()
        if not self.health.done:  # live: the workers' counts so far
            progress = self.health.progress.values()
            report.completed = sum(int(p.get("completed", 0)) for p in progress)
            report.failed = sum(int(p.get("failed", 0)) for p in progress)
            report.calls = sum(int(p.get("calls", 0)) for p in progress)
            return report
        figures = [d["generator"] for d in self.health.done.values()]
        pauses = [f["gc_pause_max_ms"] for f in figures if f.get("gc_pause_max_ms") is not None]
        report.generator = {
            **_worst(figures).as_dict(),
            "gc_full_collections": sum(int(f.get("gc_full_collections") or 0) for f in figures),
            "gc_pause_max_ms": max(pauses, default=None),
            "processes": len(self.health.done),
        }
        report.warnings = self.health.warnings()
        return report

    async def run(self, stop: asyncio.Event | None = None) -> LoadReport:
        """Start the workers, relay a stop to them, merge what they report.

        Raises:
            WorkerFailed: If a worker exits with an error or says nothing at the end.
        """
        stop = stop or asyncio.Event()
        started = time.monotonic()
        self.processes = procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pipecat_wsclient.load.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
            )
            for _ in self.shares
        ]
        forget = on_forced_exit(lambda: _kill(procs))
        relay = asyncio.create_task(self._relay_stop(stop, procs))
        followers = [
            asyncio.create_task(self._follow(n, proc, share, stop))
            for n, (proc, share) in enumerate(zip(procs, self.shares, strict=True), 1)
        ]
        first_failure: BaseException | None = None
        try:
            # The first failure ends the run: the other workers are stopped, not awaited.
            done, _ = await asyncio.wait(followers, return_when=asyncio.FIRST_EXCEPTION)
            first_failure = next((t.exception() for t in done if t.exception()), None)
        finally:
            relay.cancel()
            _kill(procs)
            for proc in procs:
                await proc.wait()
                if proc.stdin is not None:
                    proc.stdin.close()
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)  # the others' failures
            forget()
        if first_failure is not None:
            raise first_failure
        self._merged.timeline = _merge_timelines(
            [d["timeline"] for _, d in sorted(self.health.done.items())]
        )
        self._merged._t0 = started
        return self.report()

    async def _relay_stop(self, stop: asyncio.Event, procs: list[Any]) -> None:
        await stop.wait()
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        await asyncio.sleep(STOP_GRACE_SECS)
        _kill(procs)  # what has not reported by now is not waited for

    async def _follow(self, n: int, proc: Any, share: LoadOptions, stop: asyncio.Event) -> None:
        # The options, then stdin stays open: its end tells the worker we are gone.
        proc.stdin.write(options_json(share).encode() + b"\n")
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):  # it died at once: said below
            pass
        stderr = asyncio.create_task(proc.stderr.read())
        async for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                if stop.is_set():
                    break  # killed in the middle of a line: it was stopped
                raise WorkerFailed(f"load worker {n} wrote a line that is not JSON") from None
            if "progress" in message:
                self.health.progress[n] = message["progress"]
            elif "done" in message:
                done = message["done"]
                self.health.done[n] = done
                self._merged.results.extend(CallResult(**r) for r in done["results"])
        code = await proc.wait()
        words = (await stderr).decode(errors="replace").strip().splitlines()
        if stop.is_set():
            return  # stopped: what it reported counts, a worker cut short is no failure
        if code != 0 or n not in self.health.done:
            last = words[-1] if words else "no output"
            raise WorkerFailed(f"load worker {n} failed (exit code {code}): {last}")


def _kill(procs: list[Any]) -> None:
    """Kill the workers still running (they are waited for by whoever awaits them)."""
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


def _merge_timelines(timelines: list[list[list[float]]]) -> list[tuple[float, int]]:
    """Active calls over time, summed over the workers' timelines (t, active)."""
    changes: list[tuple[float, int]] = []
    for timeline in timelines:
        before = 0
        for t, active in timeline:
            changes.append((t, int(active) - before))
            before = int(active)
    total, merged = 0, []
    for t, change in sorted(changes):
        total += change
        merged.append((t, total))
    return merged
