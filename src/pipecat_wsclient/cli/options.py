#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Command-line options that several commands share, each defined once.

Each is an ``Annotated`` type for a typer command's parameter; the default
stays in the command's signature::

    @app.command()
    def call(protocol: ProtocolOption = "pipecat", header: HeaderOption = None): ...
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.caller.hygiene import check_header, printable
from pipecat_wsclient.caller.limits import MAX_MS, MAX_SECS, RATE_MAX, RATE_MIN
from pipecat_wsclient.protocols.registry import or_list, protocol_names

ProtocolOption = Annotated[str, typer.Option(help=f"Wire protocol: {', '.join(protocol_names())}.")]
"""``--protocol`` of a client command: any protocol of the registry."""

ServedProtocolOption = Annotated[
    str, typer.Option(help=f"Wire protocol: {or_list(protocol_names(served=True))}.")
]
"""``--protocol`` of ``serve``: the protocols the test server speaks."""

HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        help="Handshake header K:V (repeatable); @FILE reads K:V lines from a file, so "
        "that a token is on no command line (ps)."
    ),
]
"""``--header K:V`` or ``--header @FILE``, repeatable; a dict with :func:`parse_headers`."""

SampleRateOption = Annotated[
    int, typer.Option(help="Audio sample rate.", min=RATE_MIN, max=RATE_MAX)
]
CallerRateOption = Annotated[
    int | None,
    typer.Option(
        "--sample-rate",
        help="Pipeline sample rate. Default: the carrier's own (8 kHz; Vonage 16 kHz), "
        "so no resampler adds to what is measured; 16 kHz for pipecat and raw.",
        min=RATE_MIN,
        max=RATE_MAX,
    ),
]
"""``--sample-rate``."""

CafileOption = Annotated[
    Path | None, typer.Option(help="CA certificates (PEM) to verify a wss:// server.")
]
"""``--cafile``."""

InsecureOption = Annotated[
    bool, typer.Option(metavar="", help="Do not verify the server's TLS certificate (unsafe).")
]
"""``--insecure``."""

StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        metavar="",
        help="Fail a call whose bot broke the carrier's rules (exit 9; load: carrier_rules); "
        "without it they are only reported (carrier_errors).",
    ),
]
"""``--strict``."""

AuthTokenOption = Annotated[
    str | None,
    typer.Option(
        help=(
            "The carrier account's auth token (Vonage: its signature secret): an "
            "http(s):// webhook and the stream's upgrade are signed as the carrier signs "
            "them (Twilio, Plivo; Vonage its webhook). Default: $TWILIO_AUTH_TOKEN, "
            "$PLIVO_AUTH_TOKEN or $VONAGE_SIGNATURE_SECRET (better: a token on the "
            "command line shows in the process list)."
        ),
        show_default=False,
    ),
]
"""``--auth-token``."""

OpenTimeoutOption = Annotated[
    float, typer.Option(help="Seconds allowed to connect.", min=0.001, max=MAX_SECS)
]
"""``--open-timeout``."""

ReconnectOption = Annotated[
    bool,
    typer.Option(
        "--reconnect",
        metavar="",
        help="Redial a lost connection (the transport's reconnection; for pipecat/raw peers). "
        "Off: a call is one connection, as a carrier's is, and a drop fails it (exit 7).",
    ),
]
"""``--reconnect``."""

StopSilenceOption = Annotated[
    float | None,
    typer.Option(
        "--stop-silence-ms",
        help="The bot's silence that means it stopped talking (a barge-in's stop is dated at "
        "its start; a carrier clear ends the talk at once). Default 500 (a scenario's "
        "stop_silence_ms): longer than the pauses between a bot's sentences (200-450 ms).",
        min=20,
        max=MAX_MS,
    ),
]
"""``--stop-silence-ms`` of ``call``, ``test``, ``load`` and ``phone`` (None: the default)."""


def stop_silence_secs(ms: float | None) -> float:
    """``--stop-silence-ms`` in seconds (the default when not given)."""
    return STOP_SILENCE_SECS if ms is None else ms / 1000


JsonReportOption = Annotated[
    bool, typer.Option("--json", metavar="", help="Print a machine-readable report instead.")
]
"""``--json`` of ``call`` and ``demo``."""

VerboseOption = Annotated[bool, typer.Option(metavar="", help="Show debug logs.")]
"""``--verbose``."""


HEADER_FILE_MAX_BYTES = 64 * 1024
"""Largest ``--header @FILE``."""


def parse_headers(items: list[str] | None) -> dict[str, str]:
    """Turn ``--header`` values into handshake headers, each checked.

    Args:
        items: ``K:V`` strings, or ``@FILE`` for a file of ``K:V`` lines
            (blank lines and lines starting with ``#`` skipped); names and
            values are stripped.

    Returns:
        The headers (a later name wins).

    Raises:
        ValueError: If an item has no colon or no name, a name is not a
            token, a value holds a line break or another control character
            (:func:`~pipecat_wsclient.caller.hygiene.check_header`), or the
            file cannot be read. The message never shows a value.
    """
    headers: dict[str, str] = {}
    for item in items or []:
        if item.startswith("@"):
            where = f"--header {item}"
            lines = [
                line
                for line in _header_file(Path(item[1:]), where).splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
        else:
            where, lines = "--header", [item]
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"{where} wants NAME: VALUE (the value is not shown: a secret?)")
            name, value = name.strip(), value.strip()
            check_header(name, value, where)
            headers[name] = value
    return headers


def _header_file(path: Path, where: str) -> str:
    """The text of a ``--header @FILE``, read with bounds.

    Raises:
        ValueError: If it cannot be read, is too big or is not UTF-8.
    """
    try:
        if path.stat().st_size > HEADER_FILE_MAX_BYTES:
            raise ValueError(f"{where}: larger than {HEADER_FILE_MAX_BYTES // 1024} KiB")
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{where}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text") from None


AllowEnvOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-env",
        help="Let the scenario files read these environment variables with ${NAME} "
        "(repeatable, or NAME,NAME). Without it a file you were sent cannot take your "
        "secrets to the host it names.",
    ),
]
"""``--allow-env NAME[,NAME]`` of ``test`` and ``load --scenario``; see :func:`allowed_env`."""

AllowOutsideFilesOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-files",
        metavar="",
        help="Let the scenario files play WAV files outside their own folder.",
    ),
]
"""``--allow-outside-files`` of ``test`` and ``load --scenario``."""

AllowFactoriesOption = Annotated[
    bool,
    typer.Option(
        "--allow-factories",
        metavar="",
        help="Let the scenario files name Python code (a simulator's or judge's "
        "'factory') to build their LLMs.",
    ),
]
"""``--allow-factories`` of ``test`` and ``load --scenario``."""


def allowed_env(items: list[str] | None) -> frozenset[str]:
    """The variable names of ``--allow-env`` values (comma-separated, repeatable).

    Raises:
        ValueError: For a name that is not a variable's (letters, digits, ``_``).
    """
    names: set[str] = set()
    for item in items or []:
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            if not (name.replace("_", "a").isalnum() and name.isascii() and not name[0].isdigit()):
                raise ValueError(f"--allow-env '{printable(name)}': not a variable name")
            names.add(name)
    return frozenset(names)


CarrierOption = Annotated[
    list[str] | None,
    typer.Option(
        help="A carrier's call id or option K=V (repeatable): call_sid, stream_sid, "
        "from_number... (the protocol's error lists its keys)."
    ),
]
"""``--carrier K=V``, repeatable; the carrier serializer's keyword arguments."""

ParamOption = Annotated[
    list[str] | None,
    typer.Option(help="A custom parameter K=V of the carrier's start message (repeatable)."),
]
"""``--param K=V``, repeatable; the call's custom parameters."""


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """Turn ``K=V`` values into a dict.

    Args:
        items: ``K=V`` strings; names are stripped, values kept as given.
        option: The option's name, for the error.

    Returns:
        The pairs (a later name wins).

    Raises:
        ValueError: If an item has no ``=`` or no name.
    """
    pairs: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{option} wants NAME=VALUE (the value is not shown: a secret?)")
        pairs[name.strip()] = value
    return pairs


def check_writable(path: Path | None, option: str) -> None:
    """Fail now, before any call, if ``path`` (an output file) cannot be written.

    Args:
        path: The file an option names (None: not asked for).
        option: The option's name, for the message (``--record``).

    Raises:
        ValueError: Naming the option and the cause, in one line.
    """
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_symlink():
        # Written through, it would land on whatever the link points at.
        raise ValueError(f"{option} {path}: is a symbolic link (name the file itself)")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder, not a file")
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")
