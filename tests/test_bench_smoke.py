"""Smoke test of the side-by-side benchmarks: ``bench/run_all.py --quick`` runs and reports.

Checks that every benchmark ran both implementations and wrote its JSON and
that the results table was generated; not the numbers (a CI machine is too
noisy for that: the full run in ``bench/results/`` has them). Also runs
``bench/soak.py`` for 30 s: restarts of both kinds, interruptions, the audio
accounting closing (too short to judge the resource slopes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the benchmarks' quick run (minutes) and a 30 s soak

ROOT = Path(__file__).resolve().parents[1]
BOTH = ("ours", "pipecat")


@pytest.mark.timeout(300)
def test_run_all_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    def load(name: str) -> dict:
        path = tmp_path / f"{name}.json"
        assert path.exists(), f"{name}.json not written"
        return json.loads(path.read_text())

    streams = load("streams")["summary"]["10"]
    capacity = load("capacity")["summary"]
    pacing = load("pacing-3s")["median"]
    latency = load("inbound_latency")["summary"]["1"]
    close = load("end_to_close")["summary"]
    profile = load("profile")["profiles"]
    for impl in BOTH:
        assert streams[impl]["connected_min"] == 10, streams[impl]
        assert streams[impl]["out_rate"]["median"]["median"] > 0
        assert capacity[impl]["max_sustained"]["n"] >= 1
        assert pacing[impl]["chunks"] > 0
        assert latency[impl]["samples"] > 0
        assert close[impl]["close_seen_ms"]["n"] >= 1
        assert profile[impl]["samples"] > 0, profile[impl]
    readme = (tmp_path / "README.md").read_text()
    for section in ("## Goals", "## Concurrent streams", "## Capacity", "## Pacing", "## CPU"):
        assert section in readme


@pytest.mark.timeout(90)
def test_soak_short(tmp_path: Path) -> None:
    """``bench/soak.py`` for 30 s: restarts of both kinds happen and the audio books close."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--minutes",
            "0.5",
            "--restart-every",
            "10",
            "--interrupt-every",
            "3",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((tmp_path / "soak.json").read_text())
    for key in ("params", "thresholds", "verdict", "events", "resources", "audio", "samples"):
        assert key in report, key
    events, audio, verdict = report["events"], report["audio"], report["verdict"]
    assert events["graceful_restarts"] == 1 and events["abort_restarts"] == 1, events
    assert events["restarts_reconnected"] == 2 and events["reconnects"] >= 2, events
    assert events["interruptions"] >= 5
    # One may be lost in TCP at the abort, like audio.
    assert events["interruptions_received_by_server"] >= events["interruptions"] - 1
    assert not events["connection_errors"] and not events["pipeline_errors"]
    assert audio["produced_s"] > 10 and audio["received_by_server_s"] > 5
    assert audio["interrupted_s"] > 0
    tolerance = audio["tolerance_s"]
    assert abs(audio["client_unaccounted_s"]) <= tolerance, audio
    assert abs(audio["unaccounted_s"]) <= tolerance, audio
    assert abs(audio["lost_after_send_at_graceful_restarts_s"]) <= tolerance, audio
    for name in ("rss_kb", "tasks", "fds"):
        assert report["resources"][name]["slope_per_min"] is not None, name
    assert report["resources"]["tasks_after_call"] == report["resources"]["tasks_before_call"]
    assert "by_type" in report["resources"]["objects_after_gc"]
    assert len(report["samples"]["rows"]) >= 20
    assert verdict["flat"] is None  # 30 s is too short to judge
    assert verdict["nothing_uncounted"] and verdict["survived"], verdict
