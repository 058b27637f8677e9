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
from typing import Annotated, Any

import typer
from loguru import logger
from rich.console import Console
from rich.live import Live
from rich.text import Text

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.caller.call import CallOptions, Progress, run_call  # noqa: E402
from pipecat_wsclient.caller.hygiene import printable, rounded  # noqa: E402
from pipecat_wsclient.caller.outcome import EXIT_INTERRUPTED, EXIT_USAGE  # noqa: E402
from pipecat_wsclient.caller.result import CallResult  # noqa: E402
from pipecat_wsclient.caller.signals import (  # noqa: E402
    stop_on_signals,
    stopped_exit_code,
)
from pipecat_wsclient.cli.render import (  # noqa: E402
    progress_table,
    summary_table,
)
from pipecat_wsclient.version import __version__  # noqa: E402

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


def _print_version(value: bool) -> None:
    if value:
        print(f"pipecat-wsclient {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
            metavar="",
        ),
    ] = False,
) -> None:
    """Pipecat WebSocket client transport: demo, call a voice endpoint, serve a test one."""


def quiet_logs(verbose: bool) -> None:
    """Set up logging for a command: Pipecat's and ours only with ``--verbose``.

    A log message may quote the far end (a close reason, a message it sent):
    its control characters are escaped (:func:`printable`) before it reaches
    the terminal; a traceback after it is left as it is.
    """
    logger.enable("pipecat")
    logger.remove()
    # Failures are reported by us, in one line; Pipecat's own error logs only with --verbose.
    logger.add(sys.stderr, level="DEBUG" if verbose else "CRITICAL", format=_log_format)


_LOG_HEAD = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - "
)
"""Loguru's default format up to the message."""


def _log_format(record: Any) -> str:
    """Loguru's default line, its message made printable (and taken literally, not as markup)."""
    message = printable(record["message"]).replace("{", "{{").replace("}", "}}")
    return _LOG_HEAD + "<level>" + message.replace("<", "\\<") + "</level>\n{exception}"


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
    """Print a call's result (table or JSON) and exit with its code.

    A call stopped by a signal exits 130 (SIGINT) or 143 (SIGTERM).
    """
    if result.exit_code == EXIT_INTERRUPTED:
        result.exit_code = stopped_exit_code()
    if as_json:
        print(json.dumps(rounded(result.as_dict()), indent=2))
    else:
        for note in result.notes:  # what was done to reach the bot (its webhook)
            error_line(note, label="note", style="cyan")
        Console().print(summary_table(result))
        if result.exit_code not in (0, 130, 143):
            error_line(result.error)
    raise typer.Exit(result.exit_code)


def error_line(message: object, label: str = "error", style: str = "red") -> None:
    """Print ``label: message`` in one line on stderr; the message as plain, printable text.

    The message may quote the far end (a close reason) or a file (a
    scenario's key): it is never read as markup, and its control
    characters are escaped (:func:`~pipecat_wsclient.caller.hygiene.printable`).
    """
    err.print(Text.assemble((f"{label}:", style), " ", printable(message)), soft_wrap=True)


def warn_if_insecure(insecure: bool) -> None:
    """Say on stderr that TLS verification is off."""
    if insecure:
        err.print("[yellow]warning:[/] TLS certificate verification is off (--insecure)")


def usage_error(message: object) -> typer.Exit:
    """Print a usage error in one line (control characters escaped); return the exit (2)."""
    err.print(f"error: {printable(message)}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)
