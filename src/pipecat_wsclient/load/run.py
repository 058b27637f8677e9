#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Many simulated callers against one endpoint: the ``load`` command.

Each caller is a real pipeline with our transport (:func:`run_call`),
playing a script of turns (a clip, then think time, repeated). Calls start at
a ramp rate up to a concurrency, for a number of calls or a duration. The
per-call results are folded into percentiles; ``--fail-if`` thresholds make
it a CI gate. The PNG report is drawn by :func:`~pipecat_wsclient.load.plot.plot_report`.
An ``http(s)://`` endpoint with a carrier's protocol is the bot's webhook:
every call asks it for the stream, as the carrier does, with ids of its own.
"""

from __future__ import annotations

import asyncio
import operator
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.audio.turns import percentile
from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.builder import resolve_rate
from pipecat_wsclient.caller.call import CallOptions, bundled_clip, run_call
from pipecat_wsclient.caller.limits import MAX_SCRIPT_SECS
from pipecat_wsclient.caller.outcome import (
    EXIT_CARRIER_RULES,
    EXIT_INTERRUPTED,
    EXIT_LOST,
    EXIT_OK,
    EXIT_SILENT,
)
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.errors import redact_text, redact_uri
from pipecat_wsclient.load.gc import FullCollections
from pipecat_wsclient.load.health import Health

if TYPE_CHECKING:
    from pipecat_wsclient.scenario.model import Scenario
    from pipecat_wsclient.scenario.run import ScenarioResult
    from pipecat_wsclient.scenario.speech import Transcriber

PERCENTILES = (50, 90, 95, 99)
METRICS = (
    "connect_ms",
    "first_answer_ms",
    "response_ms",
    "overlap_ms",
    "barge_in_ms",
    "underruns",
    "reconnects",
)


@dataclass
class LoadOptions:
    """What to load and how.

    Parameters:
        uris: Endpoints, used round robin.
        protocol: Wire protocol (as for ``call``).
        clips: WAV files played in turn, round robin per turn.
        calls: Total calls to make (None: until ``duration``).
        duration: Seconds to keep starting calls (None: until ``calls``).
        concurrency: Most calls at once.
        ramp: New calls per second.
        turns: Turns per call (the clip is played this many times).
        think: Seconds of silence after each clip (the caller listens).
        headers: Extra handshake headers.
        sample_rate: Pipeline sample rate; None: the carrier's own, else 16 kHz.
        open_timeout: Seconds allowed to connect.
        reconnect: Let the callers redial a lost connection (off: a drop fails the call).
        stt_model: With a scenario: the speech-to-text model for its transcript
            expectations (None: ``$PIPECAT_WSCLIENT_STT_MODEL``, else ``base.en``).
        stop_silence_ms: The bot's pause that means it stopped talking (None:
            500 ms, or the scenario's ``stop_silence_ms``).
        scenario: Run this scenario for every caller instead of clips and
            turns (its turns are checked; ``protocol`` overrides the
            scenario's unless it is ``None``).
        strict: A call whose bot broke the carrier's rules fails (class
            ``carrier_rules``); otherwise they are only counted.
        auth_token: The carrier account's auth token: each call to an
            ``http(s)://`` webhook signs its request and the stream's upgrade
            (None: the carrier's environment variable, e.g. ``TWILIO_AUTH_TOKEN``).
            Never in a log or a worker's command line (:mod:`.processes`).
    """

    uris: list[str]
    protocol: str = "pipecat"
    clips: list[Path] = field(default_factory=list)
    calls: int | None = 10
    duration: float | None = None
    concurrency: int = 10
    ramp: float = 5.0
    turns: int = 1
    think: float = 2.0
    headers: dict[str, str] = field(default_factory=dict)
    sample_rate: int | None = None
    open_timeout: float = 5.0
    scenario: Scenario | None = None
    strict: bool = False
    reconnect: bool = False
    stt_model: str | None = None
    stop_silence_ms: float | None = None
    auth_token: str | None = field(default=None, repr=False)


def error_class(result: CallResult) -> str | None:
    """A short class for a failed call: refused, http_401, timeout, tls, closed_1011, silent...

    A call the bot closed abnormally or that dropped is ``closed_CODE``
    (``closed_1006`` without a close frame); one that heard nothing, ``silent``.
    """
    if result.exit_code == EXIT_OK:
        return None
    if result.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    if result.exit_code == EXIT_SILENT:
        return "silent"
    if result.exit_code == EXIT_CARRIER_RULES:
        return "carrier_rules"
    code = result.end.get("code") if result.end else None
    if result.exit_code == EXIT_LOST and code is not None:
        return f"closed_{code}"
    error = result.error or ""
    match = re.search(r"HTTP (\d{3})", error)
    if match:
        return f"http_{match.group(1)}"
    return {3: "refused" if "refused" in error else "network", 5: "tls", 6: "timeout"}.get(
        result.exit_code, "dropped"
    )


@dataclass
class LoadReport:
    """Everything a load run measured."""

    calls: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    duration_secs: float = 0.0
    active_over_time: list[tuple[float, int]] = field(default_factory=list)
    response_ms: list[float] = field(default_factory=list)
    scenarios_passed: int | None = None
    """With a scenario: calls whose every expectation held (None without one)."""
    expectations_failed: dict[str, int] = field(default_factory=dict)
    """With a scenario: how often each expectation failed, by turn and key."""
    simulation: dict[str, Any] | None = None
    """With a simulated caller: its figures over all calls (goals reached, each
    metric's scores; :func:`~pipecat_wsclient.scenario.simulation.summarize`)."""
    generator: dict[str, float | int | None] = field(default_factory=dict)
    """The load generator's own health: event-loop lag and CPU (:mod:`.health`)."""
    warnings: list[str] = field(default_factory=list)
    """Why its figures cannot be trusted, in words (empty while they can)."""
    notes: list[str] = field(default_factory=list)
    """What was done to reach the bot (a webhook's answer...), each once, ids left out."""

    @property
    def error_rate(self) -> float:
        """Failed calls over all calls."""
        return self.failed / self.calls if self.calls else 0.0

    @property
    def pass_rate(self) -> float | None:
        """With a scenario: calls that passed over all calls."""
        if self.scenarios_passed is None:
            return None
        return self.scenarios_passed / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "calls": self.calls,
            "completed": self.completed,
            "failed": self.failed,
            "error_rate": self.error_rate,
            "errors": self.errors,
            "pass_rate": self.pass_rate,
            "expectations_failed": self.expectations_failed,
            "simulation": self.simulation,
            "metrics": self.metrics,
            "duration_secs": self.duration_secs,
            "generator": self.generator,
            "warnings": self.warnings,
            "notes": self.notes,
        }

    def value(self, name: str) -> float | None:
        """A metric by its ``--fail-if`` name: ``error_rate``, ``p95_response_ms``, ..."""
        if name == "error_rate":
            return self.error_rate
        if name == "pass_rate":
            return self.pass_rate
        if name in ("calls", "completed", "failed"):
            return float(getattr(self, name))
        stat, _, metric = name.partition("_")
        return self.metrics.get(metric, {}).get(stat)


def summarize(results: list[CallResult]) -> dict[str, dict[str, float | None]]:
    """Percentiles (p50/p90/p95/p99/max) of each metric over the calls."""
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for r in results:
        if r.connect_ms is not None:
            samples["connect_ms"].append(r.connect_ms)
        if r.first_answer_ms is not None:
            samples["first_answer_ms"].append(r.first_answer_ms)
        samples["response_ms"].extend(
            t["latency_ms"] for t in r.turns if t["latency_ms"] is not None
        )
        samples["overlap_ms"].extend(ms for t in r.turns if (ms := t.get("overlap_ms")) is not None)
        samples["barge_in_ms"].extend(
            ms for t in r.turns if (ms := t.get("barge_in_ms")) is not None
        )
        if r.connect_ms is not None:
            samples["underruns"].append(float(r.underruns))
            samples["reconnects"].append(float(r.reconnects))
    return {
        metric: {
            **{f"p{q}": percentile(values, q) for q in PERCENTILES},
            "max": max(values) if values else None,
            "count": float(len(values)),
        }
        for metric, values in samples.items()
    }


_THRESHOLD = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>|==)\s*([0-9.]+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


COUNTS = ("error_rate", "pass_rate", "calls", "completed", "failed")
"""The report's figures that are not percentiles of a metric."""


def metric_names() -> list[str]:
    """Every name ``--fail-if`` accepts: the counts, then ``pNN_``/``max_`` of each metric."""
    stats = [f"p{q}" for q in PERCENTILES] + ["max"]
    return [*COUNTS, *(f"{stat}_{metric}" for metric in METRICS for stat in stats)]


def parse_threshold(text: str) -> tuple[str, str, float]:
    """Parse ``p95_response_ms>1200`` into (metric, op, value).

    Raises:
        ValueError: If the text is not ``metric<op>number`` or names no metric
            of the report (the message lists the valid names).
    """
    match = _THRESHOLD.match(text)
    if not match:
        raise ValueError(f"--fail-if wants METRIC>NUMBER (or <, >=, <=, ==), got {text!r}")
    name = match.group(1)
    if name not in metric_names():
        stats = "/".join([*(f"p{q}" for q in PERCENTILES), "max"])
        raise ValueError(
            f"--fail-if: no metric {name!r}; use {', '.join(COUNTS)}, "
            f"or {stats}_ of {', '.join(METRICS)} (e.g. p95_response_ms)"
        )
    return name, match.group(2), float(match.group(3))


def crossed(report: LoadReport, thresholds: list[str]) -> list[str]:
    """The thresholds the report crosses, as readable lines."""
    lines = []
    for text in thresholds:
        name, op, limit = parse_threshold(text)
        value = report.value(name)
        if value is None:
            lines.append(f"{name} has no value (no samples), so {text} cannot pass")
        elif _OPS[op](value, limit):
            lines.append(f"{name} = {value:.4g} ({text})")
    return lines


class HealthProbe:
    """Samples the event loop's lag and the process's CPU while a load runs.

    Every ``interval`` it asks to wake up, and notes how late it woke and how
    much CPU the process used since the last time, into a :class:`Health`.
    """

    def __init__(self, health: Health, interval: float = 0.1):
        """Initialize the probe.

        Args:
            health: Where the samples go.
            interval: Seconds between samples.
        """
        self.health = health
        self.interval = interval

    async def run(self) -> None:
        """Sample until cancelled."""
        cpu, wall = time.process_time(), time.monotonic()
        while True:
            expected = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            woke = time.monotonic()
            self.health.add_wakeup(expected, woke)
            now_cpu = time.process_time()
            self.health.add_cpu(now_cpu - cpu, woke - wall, at=woke)
            cpu, wall = now_cpu, woke


class LoadRun:
    """Start calls on a ramp, keep at most ``concurrency`` going, collect results."""

    def __init__(self, options: LoadOptions):
        """Initialize the run; reads the clips (ValueError if one cannot be read)."""
        self.options = options
        self.scenario_results: list[ScenarioResult] = []
        self._transcriber: Transcriber | None = None
        self._scripts: list[bytes] = []
        self._rate = options.sample_rate
        if options.scenario is None:  # a scenario says what to play itself
            self._rate = rate = resolve_rate(options.protocol, options.sample_rate)
            clips = [read_wav(p, rate) for p in (options.clips or [bundled_clip()])]
            longest = max(len(c) for c in clips) / 2 / rate
            script_secs = options.turns * (longest + options.think)
            if script_secs > MAX_SCRIPT_SECS:  # each script is held in memory
                raise ValueError(
                    f"a call would play {script_secs:.0f} s (--turns {options.turns} x "
                    f"(clip {longest:.1f} s + --think {options.think:g} s)); "
                    f"at most {MAX_SCRIPT_SECS:.0f} s"
                )
            think = bytes(2 * int(rate * options.think))
            self._scripts = [
                b"".join(clips[(start + t) % len(clips)] + think for t in range(options.turns))
                for start in range(len(clips))
            ]
        self.results: list[CallResult] = []
        self.active = 0
        self.started = 0
        self.timeline: list[tuple[float, int]] = []
        self.health = Health()
        """The generator's own health while it runs (loop lag, CPU)."""
        self.collections = FullCollections()
        """Full garbage collections, deferred to between calls (:mod:`.load_gc`)."""
        self._t0 = 0.0

    def call_options(self, n: int) -> CallOptions:
        """The options of the ``n``-th call: endpoint and script round robin."""
        o = self.options
        return CallOptions(
            uri=o.uris[n % len(o.uris)],
            protocol=o.protocol,
            audio=self._scripts[n % len(self._scripts)],
            headers=o.headers,
            sample_rate=self._rate,
            open_timeout=o.open_timeout,
            reconnect=o.reconnect,
            strict=o.strict,
            auth_token=o.auth_token,
            listen=0.5,
            stop_silence=STOP_SILENCE_SECS
            if o.stop_silence_ms is None
            else o.stop_silence_ms / 1000,
        )

    async def _one(self, n: int, stop: asyncio.Event):
        self.active += 1
        self.timeline.append((time.monotonic() - self._t0, self.active))
        try:
            if self.options.scenario is not None:
                result = await self._scenario_call(n, stop)
            else:
                result = await run_call(self.call_options(n), stop=stop)
        except Exception as e:  # a caller must not take the run down
            result = CallResult(uri=redact_uri(self.options.uris[n % len(self.options.uris)]))
            result.exit_code, result.error = 1, redact_text(f"{type(e).__name__}: {e}")
        self.results.append(result)
        self.active -= 1
        self.collections.call_ended()
        self.timeline.append((time.monotonic() - self._t0, self.active))

    async def prepare(self) -> None:
        """Before the first call: load what the calls will need (a scenario's STT model).

        Raises:
            SpeechError: If the scenario checks transcripts and the model cannot load.
        """
        scenario = self.options.scenario
        if scenario is None or not any(t.expect.needs_transcript for t in scenario.turns):
            return
        from pipecat_wsclient.scenario.speech import Transcriber

        self._transcriber = self._transcriber or Transcriber(model=self.options.stt_model)
        await self._transcriber.prepare()

    async def _scenario_call(self, n: int, stop: asyncio.Event) -> CallResult:
        from pipecat_wsclient.scenario.run import RunOptions, run_scenario

        o = self.options
        assert o.scenario is not None
        if self._transcriber is None:
            from pipecat_wsclient.scenario.speech import Transcriber

            # One model, one transcription at a time.
            self._transcriber = Transcriber(model=o.stt_model)
        options = RunOptions(
            uri=o.uris[n % len(o.uris)],
            protocol=o.protocol,
            headers=dict(o.headers),
            transcripts=False,  # only where an expectation needs one: CPU is for the callers
            transcriber=self._transcriber,
            stop_silence_ms=o.stop_silence_ms,
            auth_token=o.auth_token,
        )
        scenario_result = await run_scenario(o.scenario, options, stop=stop)
        self.scenario_results.append(scenario_result)
        return scenario_call_result(scenario_result)

    async def run(self, stop: asyncio.Event | None = None) -> LoadReport:
        """Run until the calls are made (or ``duration`` has passed, or ``stop``)."""
        o = self.options
        stop = stop or asyncio.Event()
        self._t0 = time.monotonic()
        deadline = self._t0 + o.duration if o.duration else None
        tasks: set[asyncio.Task] = set()
        interval = 1.0 / o.ramp if o.ramp > 0 else 0.0
        probe = asyncio.create_task(HealthProbe(self.health).run())
        self.collections.start()
        try:
            await self._start_calls(stop, deadline, interval, tasks)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            self.collections.stop()
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        return self.report()

    async def _start_calls(
        self,
        stop: asyncio.Event,
        deadline: float | None,
        interval: float,
        tasks: set[asyncio.Task],
    ) -> None:
        o = self.options
        while not stop.is_set():
            now = time.monotonic()
            if (o.calls is not None and self.started >= o.calls) or (
                deadline is not None and now >= deadline
            ):
                break
            if self.active >= o.concurrency:
                await asyncio.sleep(0.01)
                continue
            task = asyncio.create_task(self._one(self.started, stop))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.started += 1
            if interval:
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass

    def generator_health(self) -> tuple[dict[str, float | int | None], list[str]]:
        """The generator's own figures (loop lag, CPU, full collections) and warnings."""
        pauses = self.collections.pauses
        generator = {
            **self.health.overall().as_dict(),
            "gc_full_collections": len(pauses),
            "gc_pause_max_ms": max(pauses) * 1e3 if pauses else None,
        }
        return generator, self.health.warnings(gc_pauses=pauses)

    def report(self) -> LoadReport:
        """The report so far."""
        done = list(self.results)
        generator, warnings = self.generator_health()
        classes = Counter(c for c in map(error_class, done) if c)
        report = LoadReport(
            calls=len(done),
            completed=sum(1 for r in done if r.exit_code == EXIT_OK),
            failed=sum(1 for r in done if error_class(r)),
            errors=dict(classes),
            metrics=summarize(done),
            duration_secs=time.monotonic() - self._t0 if self._t0 else 0.0,
            active_over_time=list(self.timeline),
            generator=generator,
            warnings=warnings,
        )
        report.notes = _distinct_notes(n for r in done for n in r.notes)
        report.response_ms = [
            t["latency_ms"] for r in done for t in r.turns if t["latency_ms"] is not None
        ]
        if self.options.scenario is not None:
            scenarios = list(self.scenario_results)
            report.scenarios_passed = sum(1 for r in scenarios if r.passed)
            failed = Counter(
                f"turn {i} {line.split(' ')[0].rstrip(':')}"
                for r in scenarios
                for i, turn in enumerate(r.turns, 1)
                for line in turn.failures
            )
            report.expectations_failed = dict(failed.most_common())
            if self.options.scenario.simulation is not None:
                from pipecat_wsclient.scenario.simulation import summarize as simulated

                report.simulation = simulated(
                    [r.simulation for r in scenarios if r.simulation is not None]
                )
        return report


def scenario_call_result(result: ScenarioResult) -> CallResult:
    """A scenario's call as a ``load`` call: connection, per-turn response and barge-in.

    A failed expectation is not a call error (it shows in the pass rate); a
    call that could not be made or was lost is.
    """
    from pipecat_wsclient.scenario.run import EXIT_EXPECTATION

    call = CallResult(uri=result.uri)
    if result.exit_code not in (EXIT_OK, EXIT_EXPECTATION):
        call.exit_code, call.error = result.exit_code, result.error
    call.connect_ms = result.connect_ms
    call.duration_secs = result.duration_secs
    call.turns = [_turn_figures(t.response_ms, t.barge_in_ms) for t in result.turns]
    call.underruns = sum(t.underruns for t in result.turns)
    first = next((t for t in call.turns if t["latency_ms"] is not None), None)
    call.first_answer_ms = None if first is None else first["latency_ms"]
    return call


def _turn_figures(response_ms: float | None, barge_in_ms: float | None) -> dict[str, float | None]:
    """A scenario turn's figures as ``call``'s: a negative response is an overlap, apart."""
    overlapped = response_ms is not None and response_ms < 0
    return {
        "latency_ms": None if overlapped else response_ms,
        "overlap_ms": -response_ms if overlapped and response_ms is not None else None,
        "barge_in_ms": barge_in_ms,
    }


def _distinct_notes(notes: Iterable[str]) -> list[str]:
    """Each note once, in order; notes that differ only by ids (digits, hex) count as one."""
    seen: dict[str, str] = {}
    for note in notes:
        seen.setdefault(re.sub(r"[0-9a-fA-F]{6,}|\d+", "#", note), note)
    return list(seen.values())
