#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Exceptions of ``websockets`` and the OS mapped onto :class:`ConnectionFailure`, once.

The one boundary where library and OS errors become ours (as httpcore maps
its backends' exceptions in one place). Nothing here does I/O: it reads
exceptions and close frames and says what they mean, naming the (redacted)
URI and the limit that was hit.
"""

from __future__ import annotations

import socket
import ssl as ssl_module
from typing import Any

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    ProxyError,
)

from pipecat_wsclient.errors import ConnectionFailure, FailureKind, redact_text
from pipecat_wsclient.flood import PING_FLOOD_REASON
from pipecat_wsclient.params import WebsocketClientParams

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "abnormal closure, no close frame",
    1007: "invalid payload",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure",
}


def _describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "closed without a close frame (1006)"
    name = CLOSE_CODE_NAMES.get(code, "application code" if code >= 3000 else "unknown code")
    text = f"closed with code {code} ({name})"
    return f"{text}: {reason}" if reason else text


def failure_from_exception(
    exc: BaseException | None,
    safe_uri: str,
    params: WebsocketClientParams,
    *,
    during_connect: bool = True,
) -> ConnectionFailure:
    """Map an exception from ``websockets`` or the OS onto a :class:`ConnectionFailure`.

    Args:
        exc: The exception (``None`` for a connection that ended without one).
        safe_uri: The redacted URI to name in the message.
        params: The params, to quote the limits that were hit.
        during_connect: Whether it happened while dialing.

    Returns:
        The failure, naming the URI and the cause; ``exc`` itself if it is a
        :class:`ConnectionFailure` already (a redirect we refused).
    """

    def fail(kind: FailureKind, cause: str, **kw: Any) -> ConnectionFailure:
        return ConnectionFailure(kind, safe_uri, cause, during_connect=during_connect, **kw)

    if isinstance(exc, ConnectionFailure):
        return exc
    if isinstance(exc, ConnectionClosed):
        rcvd, sent = exc.rcvd, exc.sent
        if (
            sent is not None
            and sent.code == CLOSE_POLICY_VIOLATION
            and sent.reason.startswith(PING_FLOOD_REASON)
            and exc.rcvd_then_sent is not True  # ours, not an echo of the server's close
        ):
            return fail(
                FailureKind.CLOSED,
                f"the server sent pings faster than max_pings_per_sec={params.max_pings_per_sec} "
                f"({sent.reason}); closed with code 1008 (policy violation)",
                close_code=CLOSE_POLICY_VIOLATION,
                close_reason=sent.reason,
            )
        if sent is not None and sent.code == CLOSE_MESSAGE_TOO_BIG and rcvd is None:
            return fail(
                FailureKind.MESSAGE_TOO_BIG,
                f"received a message over max_message_size={params.max_message_size} bytes; "
                "closed with code 1009 (message too big)",
                close_code=CLOSE_MESSAGE_TOO_BIG,
                close_reason=sent.reason,
            )
        if sent is not None and sent.code == CLOSE_INTERNAL_ERROR and "keepalive" in sent.reason:
            return fail(
                FailureKind.KEEPALIVE,
                f"no answer to keepalive ping within ping_timeout={params.ping_timeout}s",
                close_code=CLOSE_INTERNAL_ERROR,
                close_reason=sent.reason,
            )
        frame = rcvd or sent
        code = frame.code if frame else None
        reason = frame.reason if frame else ""
        who = "server" if rcvd is not None else "connection"
        return fail(
            FailureKind.CLOSED,
            f"{who} {_describe_close(code, reason)}",
            close_code=code if code is not None else 1006,
            close_reason=reason,
        )
    if exc is None:
        return fail(FailureKind.CLOSED, _describe_close(None, ""), close_code=1006)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        phrase = exc.response.reason_phrase
        return fail(
            FailureKind.HTTP_STATUS,
            f"HTTP {status} {phrase}".rstrip() + " at the opening handshake",
            status_code=status,
        )
    if isinstance(exc, ProxyError):
        return fail(FailureKind.NETWORK, f"proxy error: {redact_text(str(exc))}")
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, (EOFError, OSError)):
        # The TCP connection ended before an HTTP answer: what a load balancer
        # or proxy does while the server behind it restarts. A network error.
        return fail(
            FailureKind.NETWORK,
            f"connection closed during the opening handshake ({exc.__cause__!r})",
        )
    if isinstance(exc, InvalidMessage) and exc.__cause__ is not None:
        cause = exc.__cause__
        return fail(FailureKind.HANDSHAKE, f"invalid handshake response ({cause!r})")
    if isinstance(exc, InvalidHandshake):
        return fail(FailureKind.HANDSHAKE, f"invalid handshake: {redact_text(str(exc))}")
    if isinstance(exc, TimeoutError):
        return fail(FailureKind.TIMEOUT, f"no answer within open_timeout={params.open_timeout}s")
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return fail(FailureKind.TLS, f"TLS certificate verification failed: {exc.verify_message}")
    if isinstance(exc, ssl_module.SSLError):
        return fail(FailureKind.TLS, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return fail(FailureKind.REFUSED, "connection refused")
    if isinstance(exc, socket.gaierror):
        return fail(FailureKind.DNS, f"host name not resolved ({exc.strerror or exc})")
    if isinstance(exc, OSError):
        return fail(FailureKind.NETWORK, f"network error: {exc.strerror or exc!r}")
    return fail(FailureKind.NETWORK, f"unexpected error: {redact_text(repr(exc))}")
