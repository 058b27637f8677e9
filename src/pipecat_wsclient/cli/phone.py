#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient phone``: serve the browser phone until Ctrl-C.

Prints ``Phone page: http://127.0.0.1:PORT/`` on a line of its own (scripts
read it), opens the page in the browser unless told not to, and prints one
line per call as it ends.
"""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Callable
from pathlib import Path

from pipecat_wsclient.caller.outcome import carrier_rules_summary
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.caller.signals import stop_on_signals
from pipecat_wsclient.cli.app import usage_error
from pipecat_wsclient.phone import PhoneOptions, PhoneServer


def call_line(number: int, result: CallResult, dropped_secs: float = 0.0) -> str:
    """One line on a finished call: its end, turns, carrier rules broken and files.

    Args:
        number: The call's number in this run.
        result: Its result.
        dropped_secs: The page's audio dropped for coming faster than real time.
    """
    parts = [f"call {number}: {result.error or 'ended'}"]
    if result.turns:
        latencies = [t["latency_ms"] for t in result.turns if t["latency_ms"] is not None]
        parts.append(f"{len(result.turns)} turns, {len(latencies)} answered")
        if result.latency_p50_ms is not None:
            parts.append(f"response p50 {result.latency_p50_ms:.0f} ms")
    if result.barge_ins:
        parts.append(f"{len(result.barge_ins)} barge-ins")
    if result.carrier_errors:
        parts.append(f"carrier rules broken: {carrier_rules_summary(result.carrier_errors)}")
    if dropped_secs:
        parts.append(f"{dropped_secs:.1f} s of the page's audio dropped (sent too fast)")
    if result.record:
        parts.append(f"recording {result.record}")
    return " · ".join(parts)


async def run_phone(
    options: PhoneOptions,
    *,
    port: int = 0,
    folder: Path | None = None,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the phone page until SIGINT/SIGTERM.

    Args:
        options: What each call dials and how.
        port: The local port (0 picks a free one).
        folder: Where this run's folder (``run-YYYYMMDD-HHMMSS-XXXXXXXX/``,
            each call's recording and timeline in it) is made (``--save``); a
            temporary folder, removed at the end, if None.
        open_browser: Open the page in the default browser.
        say: Prints a line for the user (the page's address, each call's end).

    Raises:
        OSError: If the port cannot be bound.
        typer.Exit: (2) If the run's folder cannot be made in ``folder``.
    """
    stop = asyncio.Event()
    with stop_on_signals(stop):
        server = PhoneServer(
            options,
            port=port,
            folder=folder,
            on_call_end=lambda n, result: say(
                call_line(n, result, server.mic_dropped_secs.get(n, 0.0))
            ),
        )
        try:
            server.open_folder()
        except OSError as e:
            raise usage_error(f"--save {folder}: {e}") from None
        async with server:
            say(f"Phone page: {server.url}")
            if open_browser:
                await asyncio.to_thread(webbrowser.open, server.launcher().as_uri())
            await stop.wait()
