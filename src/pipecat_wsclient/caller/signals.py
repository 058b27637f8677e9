#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Ctrl-C and SIGTERM as an ``asyncio.Event``: how the commands stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def stop_on_signals(event: asyncio.Event) -> Iterator[None]:
    """Set ``event`` on SIGINT or SIGTERM while the block runs, instead of raising.

    Where signal handlers cannot be installed (not the main thread, Windows),
    nothing is installed and the block relies on cancellation. Call it from
    a coroutine: it uses the running loop::

        stop = asyncio.Event()
        with stop_on_signals(stop):
            await run(stop)

    Args:
        event: The event to set.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, event.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
