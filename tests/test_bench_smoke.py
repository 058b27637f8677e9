"""Smoke test of the side-by-side benchmarks: ``bench/run_all.py --quick`` runs and reports.

Checks that every benchmark ran both implementations and wrote its JSON and
that the results table was generated; not the numbers (a CI machine is too
noisy for that: the full run in ``bench/results/`` has them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
