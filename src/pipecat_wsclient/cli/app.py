#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The typer app of ``pipecat-wsclient`` and what its commands share: output, errors, logs.

Each command lives in a module of this package that registers it on
:data:`app` (``main`` imports them all).
"""

from __future__ import annotations

import asyncio
import json
import sys

import typer
from loguru import logger
from rich.console import Console
from rich.live import Live

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.caller.call import CallOptions, Progress, run_call  # noqa: E402
from pipecat_wsclient.caller.outcome import EXIT_USAGE  # noqa: E402
from pipecat_wsclient.caller.result import CallResult  # noqa: E402
from pipecat_wsclient.caller.signals import stop_on_signals  # noqa: E402
from pipecat_wsclient.cli.render import (  # noqa: E402
    progress_table,
    summary_table,
)

# The banner is out of the way; importing this module must not silence
# Pipecat for the rest of the process (each command sets up logging itself).
logger.enable("pipecat")

app = typer.Typer(
    help="Pipecat WebSocket client transport: demo, call a voice endpoint, serve a test one.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def quiet_logs(verbose: bool) -> None:
    """Set up logging for a command: Pipecat's and ours only with ``--verbose``."""
    logger.enable("pipecat")
    logger.remove()
    # Failures are reported by us, in one line; Pipecat's own error logs only with --verbose.
    logger.add(sys.stderr, level="DEBUG" if verbose else "CRITICAL")


async def call_live(options: CallOptions, *, live: bool) -> CallResult:
    """Make a call with Ctrl-C as a clean stop, and a live view when ``live``."""
    stop = asyncio.Event()
    with stop_on_signals(stop):
        if not live:
            return await run_call(options, stop=stop)
        with Live(progress_table(Progress()), console=err, transient=True) as display:
            return await run_call(
                options, stop=stop, on_progress=lambda p: display.update(progress_table(p))
            )


def finish(result: CallResult, as_json: bool) -> None:
    """Print a call's result (table or JSON) and exit with its code."""
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        Console().print(summary_table(result))
        if result.exit_code not in (0, 130):
            err.print(f"[red]error:[/] {result.error}")
    raise typer.Exit(result.exit_code)


def warn_if_insecure(insecure: bool) -> None:
    """Say on stderr that TLS verification is off."""
    if insecure:
        err.print("[yellow]warning:[/] TLS certificate verification is off (--insecure)")


def usage_error(message: object) -> typer.Exit:
    """Print a usage error in one line; return the exit (2) to raise."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)
