#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One worker process of ``load --processes N`` (run by :mod:`.load_procs`).

Reads its share of the load as one JSON line on stdin, runs it, and writes
JSON lines on stdout: ``{"progress": ...}`` twice a second, then
``{"done": ...}`` with every call's result, its active-calls timeline and its
own health. SIGINT ends it early, as Ctrl-C ends ``load``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from loguru import logger

PROGRESS_SECS = 0.5


async def work(line: str) -> None:
    """Run the share described by ``line``; report on stdout."""
    from pipecat_wsclient.caller.signals import stop_on_signals
    from pipecat_wsclient.load.run import LoadOptions, LoadRun

    data = json.loads(line)
    data["clips"] = [Path(p) for p in data["clips"]]
    run = LoadRun(LoadOptions(**data))
    stop = asyncio.Event()

    def say(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    with stop_on_signals(stop):
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
    asyncio.run(work(sys.stdin.readline()))


if __name__ == "__main__":
    main()
