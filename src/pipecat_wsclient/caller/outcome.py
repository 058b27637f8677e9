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
EXIT_INTERRUPTED = 130
"""Ended by Ctrl-C (the recording is still written)."""
