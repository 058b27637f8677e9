"""Full garbage collections in a load run: deferred to between calls, timed, reported (issue 16).

A full collection scans every object the collector tracks and holds the
event loop meanwhile: with 200 callers in one process, up to 200 ms, which
every caller's figures then carry. The invariants: during a run the
collector makes no full collection of its own (young ones go on), ours come
every ``every_calls`` ended calls and are timed, a pause over the lag limit
is a warning, and the collector's thresholds are back as they were after
the run, however it ends.
"""

from __future__ import annotations

import gc

import pytest

from pipecat_wsclient.load.gc import FullCollections
from pipecat_wsclient.load.health import Health
from pipecat_wsclient.load.run import LoadOptions, LoadRun
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_collection_every_so_many_ended_calls_timed() -> None:
    clock = FakeClock()
    made: list[float] = []

    def collect() -> None:
        made.append(clock.now)
        clock.now += 0.25  # a 250 ms collection

    collections = FullCollections(3, collect=collect, clock=clock)
    for _ in range(8):
        clock.now += 1.0
        collections.call_ended()
    assert made == [3.0, 6.25]
    assert collections.pauses == [0.25, 0.25]
    with pytest.raises(ValueError, match="every_calls"):
        FullCollections(0)


def test_start_defers_the_collectors_full_collections_and_stop_puts_them_back() -> None:
    saved = gc.get_threshold()
    collections = FullCollections()
    try:
        collections.start()
        collections.start()  # twice: still restores the original
        young, middle, oldest = gc.get_threshold()
        assert (young, middle) == saved[:2]
        assert oldest > 10**9
    finally:
        collections.stop()
    assert gc.get_threshold() == saved
    collections.stop()  # twice: harmless
    assert gc.get_threshold() == saved


def test_a_long_pause_is_a_warning_a_short_one_is_not() -> None:
    health = Health()
    health.add_wakeup(expected=1.0, woke=1.001)
    assert health.warnings(gc_pauses=[0.005]) == []
    [pause, advice] = health.warnings(gc_pauses=[0.005, 0.12])
    assert "1 full garbage collection(s)" in pause and "120 ms" in pause
    assert "--processes" in advice


@pytest.mark.slow
async def test_a_load_run_makes_no_full_collection_but_its_own() -> None:
    saved = gc.get_threshold()
    full: list[str] = []

    def watch(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2 and running:
            full.append("ours" if in_ours else "collector's")

    in_ours = running = False

    class Watched(FullCollections):
        """Counts only while the run defers (server and run set-up collect as they like)."""

        def start(self) -> None:
            nonlocal running
            super().start()
            running = True

        def stop(self) -> None:
            nonlocal running
            running = False
            super().stop()

    gc.callbacks.append(watch)
    # A collector eager to make full collections: without the deferral, it
    # makes many during the run.
    gc.set_threshold(50, 1, 1)
    try:
        async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
            run = LoadRun(
                LoadOptions(uris=[server.uri], calls=6, concurrency=3, ramp=20, turns=1, think=0.3)
            )

            def collect() -> None:
                nonlocal in_ours
                in_ours = True
                try:
                    gc.collect()
                finally:
                    in_ours = False

            run.collections = Watched(2, collect=collect)
            report = await run.run()
        assert gc.get_threshold() == (50, 1, 1)  # put back as it was
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*saved)
    assert report.completed == 6
    assert full == ["ours"] * 3, full
    assert report.generator["gc_full_collections"] == 3
    assert report.generator["gc_pause_max_ms"] is not None
