#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One worker process of ``load --processes N`` (run by :mod:`.load_procs`).

Reads its share of the load as one JSON line on stdin (the headers and the
auth token with it: never on a command line), runs it, and writes JSON lines
on stdout: ``{"progress": ...}`` twice a second, then ``{"done": ...}`` with every
call's result, its active-calls timeline and its own health. SIGINT ends it
early, as Ctrl-C ends ``load``, and so does the end of its stdin: the parent
keeps it open while the run lasts, so a worker whose parent is gone stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path

from loguru import logger

PROGRESS_SECS = 0.5


def _stop_at_end_of_input(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once stdin closes (the parent ended or is gone); a daemon thread."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread inside a buffered read holds its
        # lock, and the interpreter aborts at exit (SIGABRT) waiting for it.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:  # the loop is closed: the worker is done anyway
            pass

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


async def work(line: str) -> None:
    """Run the share described by ``line``; report on stdout."""
    from pipecat_wsclient.caller.signals import stop_on_signals

    stop = asyncio.Event()
    _stop_at_end_of_input(asyncio.get_running_loop(), stop)

    def say(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    with stop_on_signals(stop):  # before Pipecat is imported: a stop now is seen too
        from pipecat_wsclient.load.run import LoadOptions, LoadRun

        data = json.loads(line)
        data["clips"] = [Path(p) for p in data["clips"]]
        run = LoadRun(LoadOptions(**data))
        task = asyncio.create_task(run.run(stop))
        while not task.done():
            await asyncio.wait([task], timeout=PROGRESS_SECS)
            report = run.report()
            say(
                {
                    "progress": {
                        "active": run.active,
                        "calls": report.calls,
                        "completed": report.completed,
                        "failed": report.failed,
                        "recent": run.health.recent().as_dict(),
                        "recent_warnings": run.health.warnings(recent=True),
                    }
                }
            )
        await task
    generator, warnings = run.generator_health()
    say(
        {
            "done": {
                "results": [r.as_dict() for r in run.results],
                "timeline": run.timeline,
                "generator": generator,
                "warnings": warnings,
            }
        }
    )


def main() -> None:
    """Entry point: ``python -m pipecat_wsclient.load.worker`` (options on stdin)."""
    logger.remove()
    logger.add(sys.stderr, level="CRITICAL")
    line = sys.stdin.buffer.readline().decode()
    if line.strip():
        asyncio.run(work(line))


if __name__ == "__main__":
    main()
