#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""How a call ended, as a code: every front end's outcomes (and the commands' exit codes)."""

from __future__ import annotations

from pipecat_wsclient.errors import FailureKind

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CODES = {
    FailureKind.REFUSED: 3,
    FailureKind.DNS: 3,
    FailureKind.NETWORK: 3,
    FailureKind.HTTP_STATUS: 4,
    FailureKind.HANDSHAKE: 4,
    FailureKind.TLS: 5,
    FailureKind.TIMEOUT: 6,
}
"""Exit code per failure; anything else that ends a call early (connection lost) is 7."""
EXIT_LOST = 7
EXIT_SILENT = 8
"""The call completed but not a sound came back from the bot."""
EXIT_CARRIER_RULES = 9
"""``--strict``: the call completed, but the bot broke the carrier's rules."""
EXIT_INTERRUPTED = 130
"""Ended by Ctrl-C, SIGINT (the recording is still written)."""
EXIT_TERMINATED = 143
"""Ended by SIGTERM (as after Ctrl-C: the recording is still written)."""

SILENT_ERROR = (
    "heard nothing from the bot: check the --protocol (the bot's serializer), the URI's "
    "path, and the bot's log"
)
"""What a call that heard nothing says to check."""

EXIT_TABLE = {
    EXIT_OK: "the call completed (ended by us, or by the bot with a normal close)",
    1: "load: a call failed (beyond --max-error-rate) or a --fail-if threshold was crossed",
    EXIT_USAGE: "usage: a wrong option or input, found before dialing",
    3: "refused, DNS or network error",
    4: "HTTP status at the opening handshake",
    5: "TLS error",
    6: "open timeout",
    EXIT_LOST: "the bot closed the call abnormally or the connection dropped",
    EXIT_SILENT: "the call completed but heard nothing from the bot",
    EXIT_CARRIER_RULES: "--strict: the bot broke the carrier's rules (carrier_errors)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); the report is still written",
    EXIT_TERMINATED: "terminated (SIGTERM); the report is still written",
}
"""Every exit code of every command, in one table (``--help`` and the docs show it)."""


def carrier_rules_summary(errors: dict[str, dict]) -> str:
    """The carrier's rules the bot broke, on one line: ``kind (code) xN; ...``."""
    parts = []
    for kind, found in errors.items():
        code = f" ({found['code']})" if found.get("code") else ""
        parts.append(f"{kind}{code} x{found['count']}")
    return "; ".join(parts)


def carrier_rules_error(errors: dict[str, dict]) -> str:
    """One line naming the carrier's rules the bot broke (kind, code, count)."""
    return "the bot broke the carrier's rules: " + carrier_rules_summary(errors)


def exit_codes_help() -> str:
    """The exit codes as one line for ``--help``."""
    return "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_TABLE.items()) + "."
