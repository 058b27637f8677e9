"""The load generator knows its own limit (cli.health, load's HealthProbe).

The pure part takes samples with their times, so no clock is involved. The
whole part runs ``LoadRun`` against the tone server twice: as it is, and
with a task in the same event loop that keeps the CPU busy 90 ms out of
every 92 (a generator at its limit): only the second is flagged, in the
report and in the live view's figures.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pipecat_wsclient.cli.render import load_progress, load_table
from pipecat_wsclient.load.health import Health
from pipecat_wsclient.load.run import LoadOptions, LoadRun
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer


def test_no_samples_no_figures_no_warnings() -> None:
    health = Health()
    figures = health.overall()
    assert (figures.samples, figures.lag_p99_ms, figures.cpu_mean) == (0, None, None)
    assert health.warnings() == []


def test_lag_and_cpu_figures() -> None:
    health = Health()
    for i in range(100):
        expected = i * 0.1
        health.add_wakeup(expected, expected + (0.050 if i == 99 else 0.001))
        health.add_cpu(0.03, 0.1, at=expected)
    figures = health.overall()
    assert figures.lag_p50_ms == pytest.approx(1.0)
    assert figures.lag_max_ms == pytest.approx(50.0)
    assert figures.cpu_mean == pytest.approx(0.3)
    assert figures.cpu_max == pytest.approx(0.3)
    assert health.warnings() == []


def test_a_saturated_generator_is_named_with_its_figures() -> None:
    health = Health()
    for i in range(50):
        health.add_wakeup(i * 0.1, i * 0.1 + 0.035)
        health.add_cpu(0.097, 0.1, at=i * 0.1)
    warnings = health.warnings()
    assert "used 97% of a core" in warnings[0]
    assert "lag p99 35 ms" in warnings[1]
    assert "--processes" in warnings[-1]


def test_early_lag_is_forgotten_by_the_live_view_not_by_the_report() -> None:
    health = Health(recent_secs=5.0)
    for i in range(100):  # 10 s: late in the first second only
        t = i * 0.1
        health.add_wakeup(t, t + (0.1 if t < 1.0 else 0.001))
        health.add_cpu(0.02, 0.1, at=t)
    assert health.warnings(recent=True) == []
    assert any("lag p99" in w for w in health.warnings())


def test_late_wakeups_never_count_negative() -> None:
    health = Health()
    health.add_wakeup(10.0, 9.99)  # a clock step: not a negative lag
    assert health.overall().lag_max_ms == 0.0
    health.add_cpu(1.0, 0.0)  # no wall time: ignored
    assert health.overall().cpu_mean is None


async def busy(stop: asyncio.Event) -> None:
    """Keep this event loop's CPU busy 90 ms out of every 92."""
    while not stop.is_set():
        until = time.monotonic() + 0.09
        while time.monotonic() < until:
            pass
        await asyncio.sleep(0.002)


@pytest.mark.slow
@pytest.mark.parametrize("saturated", [False, True])
async def test_the_report_says_when_the_generator_was_its_own_bottleneck(saturated) -> None:
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        run = LoadRun(
            LoadOptions(uris=[server.uri], calls=2, concurrency=2, ramp=10, turns=1, think=0.5)
        )
        stop = asyncio.Event()
        hog = asyncio.create_task(busy(stop)) if saturated else None
        try:
            report = await run.run()
            live = load_progress(run)
        finally:
            stop.set()
            if hog is not None:
                await hog
    assert report.completed == 2
    g = report.generator
    assert g["samples"] > 20
    if saturated:
        assert g["cpu_mean"] > 0.9 and g["loop_lag_p99_ms"] > 20
        assert report.warnings and "saturated" in report.warnings[0]
        assert "--processes" in report.warnings[-1]
        assert report.as_dict()["warnings"] == report.warnings
        assert "not trustworthy" in str(load_table(report).caption)
        assert live.row_count == 2  # the live view's warning row
    else:
        assert g["cpu_mean"] < 0.9 and g["loop_lag_p99_ms"] < 20
        assert report.warnings == []
        assert live.row_count == 1
