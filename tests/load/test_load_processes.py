"""``load --processes N``: the callers spread over worker processes (cli.load_procs).

The split and the timeline merge are pure; the rest runs real worker
processes against the tone server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from pipecat_wsclient.caller.call import bundled_clip
from pipecat_wsclient.load.processes import ProcessLoad, WorkerFailed, _merge_timelines, shares
from pipecat_wsclient.load.run import LoadOptions
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer

pytestmark = pytest.mark.slow  # load's worker processes


@contextlib.contextmanager
def tone_server() -> Iterator[str]:
    """``pipecat-wsclient serve --mode tone`` in a subprocess; yields its URI."""
    server = subprocess.Popen(
        [sys.executable, "-m", "pipecat_wsclient", "serve", "--mode", "tone", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield next(w for w in server.stdout.readline().split() if w.startswith("ws://"))
    finally:
        server.terminate()
        server.wait(10)


def test_the_load_is_split_as_evenly_as_whole_numbers_allow() -> None:
    options = LoadOptions(uris=["ws://x"], calls=10, concurrency=10, ramp=6.0)
    split = shares(options, 3)
    assert [s.calls for s in split] == [4, 3, 3]
    assert [s.concurrency for s in split] == [4, 3, 3]
    assert [s.ramp for s in split] == [2.0, 2.0, 2.0]
    # Two calls over three processes: the third would have none and is left out.
    assert [s.calls for s in shares(replace(options, calls=2), 3)] == [1, 1]
    by_duration = shares(LoadOptions(uris=["ws://x"], calls=None, duration=5, concurrency=4), 2)
    assert [(s.calls, s.duration, s.concurrency) for s in by_duration] == [(None, 5, 2)] * 2


def test_bad_splits_are_usage_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shares(LoadOptions(uris=["ws://x"]), 0)


def test_timelines_add_up() -> None:
    merged = _merge_timelines([[[0.0, 1], [1.0, 2], [3.0, 0]], [[0.5, 1], [2.0, 0]]])
    assert merged == [(0.0, 1), (0.5, 2), (1.0, 3), (2.0, 2), (3.0, 0)]


async def test_two_workers_make_the_calls_and_one_report() -> None:
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        load = ProcessLoad(
            LoadOptions(uris=[server.uri], calls=4, concurrency=4, ramp=20, think=0.5), 2
        )
        report = await load.run()
    assert (report.calls, report.completed, report.failed) == (4, 4, 0)
    assert report.generator["processes"] == 2
    assert report.generator["samples"] > 20
    response = report.metrics["response_ms"]
    assert response["count"] == 8  # the bundled clip asks two questions
    assert 250 <= response["p50"] <= 450
    assert max(active for _, active in report.active_over_time) <= 4
    assert report.active_over_time[-1][1] == 0


async def test_a_failing_worker_is_named(tmp_path) -> None:
    clip = tmp_path / "clip.wav"
    shutil.copy(bundled_clip(), clip)
    load = ProcessLoad(LoadOptions(uris=["ws://127.0.0.1:9/ws"], clips=[clip], calls=2), 2)
    clip.unlink()  # after the parent read it: the workers cannot
    with pytest.raises(WorkerFailed, match=r"load worker \d failed \(exit code 1\): .*clip"):
        await load.run()


def test_the_command_spreads_the_callers() -> None:
    with tone_server() as uri:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipecat_wsclient",
                "load",
                uri,
                "--calls",
                "2",
                "--concurrency",
                "2",
                "--processes",
                "2",
                "--think",
                "0.5",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["completed"] == 2 and report["generator"]["processes"] == 2
    assert isinstance(report["warnings"], list)  # (whether any: test_load_health)


async def test_a_worker_that_dies_is_named_and_the_others_are_stopped() -> None:
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        load = ProcessLoad(
            LoadOptions(uris=[server.uri], calls=None, duration=30, concurrency=4, ramp=4), 2
        )
        run = asyncio.create_task(load.run())
        while len(load.health.progress) < 2:
            await asyncio.sleep(0.05)
        load.processes[1].kill()
        started = time.monotonic()
        with pytest.raises(WorkerFailed, match=r"load worker 2 failed \(exit code -9\)"):
            await run
        assert time.monotonic() - started < 5
    assert all(proc.returncode is not None for proc in load.processes)


def test_ctrl_c_stops_every_worker_and_still_reports() -> None:
    with tone_server() as uri:
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipecat_wsclient",
                "load",
                uri,
                "--duration",
                "60",
                "--concurrency",
                "4",
                "--processes",
                "2",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(8)
        load.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        out, err = load.communicate(timeout=30)
    assert time.monotonic() - stopped < 20
    assert load.returncode == 130, err  # interrupted, and the report still printed
    report = json.loads(out)
    assert report["calls"] >= 2 and report["generator"]["processes"] == 2
