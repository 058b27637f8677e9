#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Our small exception tree, and URI redaction for messages that get logged.

Nothing here does I/O. ``session.py`` maps exceptions from ``websockets`` and
the OS onto these classes, once, at its boundary; everything above it only
sees :class:`WebsocketClientError` and its subclasses.
"""

from __future__ import annotations

import enum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipecat.utils.errors import ErrorCategory

REDACTED = "***"


class FailureKind(str, enum.Enum):  # noqa: UP042 - str() of a member stays "FailureKind.X"
    """What went wrong with a connection, coarse enough to decide on.

    Parameters:
        REFUSED: Nothing listens at the address (TCP connection refused).
        DNS: The host name did not resolve.
        TIMEOUT: The opening handshake did not finish within ``open_timeout``.
        HTTP_STATUS: The server answered the handshake with an HTTP status.
        TLS: The TLS handshake failed (certificate, protocol, ...).
        NETWORK: Another network error while dialing (unreachable, reset, ...).
        HANDSHAKE: The server's handshake answer was not valid WebSocket.
        CLOSED: The connection closed after it was open (see ``close_code``).
        WRITE_TIMEOUT: A send did not finish within ``write_timeout``: the
            peer has stopped reading.
        MESSAGE_TOO_BIG: The peer sent a message over ``max_message_size``.
        KEEPALIVE: The peer did not answer keepalive pings in time.
        CALLBACK: User code in the dial path (``headers_provider``,
            ``session_start_messages``, a serializer's hello) raised or
            returned something unusable; not retried unless a classifier
            says so.
    """

    REFUSED = "refused"
    DNS = "dns"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    TLS = "tls"
    NETWORK = "network"
    HANDSHAKE = "handshake"
    CLOSED = "closed"
    WRITE_TIMEOUT = "write_timeout"
    MESSAGE_TOO_BIG = "message_too_big"
    KEEPALIVE = "keepalive"
    CALLBACK = "callback"


class WebsocketClientError(Exception):
    """Base class of every error ``pipecat_wsclient`` raises or reports."""


class ConnectionFailure(WebsocketClientError):
    """A connection could not be made, or was lost.

    The message names the (redacted) URI and the cause, e.g.
    ``"cannot connect to wss://host/ws?token=*** - HTTP 401 Unauthorized ..."``.

    Attributes:
        kind: The :class:`FailureKind`.
        uri: The URI, with credentials redacted.
        cause: A short human-readable cause, e.g. ``"HTTP 401"``.
        status_code: The HTTP status for ``HTTP_STATUS`` failures.
        close_code: The WebSocket close code for ``CLOSED`` failures (and
            ``MESSAGE_TOO_BIG`` / ``KEEPALIVE``, which close the connection).
        close_reason: The close reason that came with ``close_code``.
        during_connect: Whether it happened while dialing (True) or on an
            open connection (False).
    """

    def __init__(
        self,
        kind: FailureKind,
        uri: str,
        cause: str,
        *,
        status_code: int | None = None,
        close_code: int | None = None,
        close_reason: str = "",
        during_connect: bool = True,
    ):
        """Initialize the failure.

        Args:
            kind: What went wrong.
            uri: The URI, already redacted with :func:`redact_uri`.
            cause: A short human-readable cause.
            status_code: The HTTP status of a rejected handshake.
            close_code: The WebSocket close code, when the connection closed.
            close_reason: The close reason, when the connection closed.
            during_connect: Whether it happened while dialing.
        """
        self.kind = kind
        self.uri = uri
        self.cause = cause
        self.status_code = status_code
        self.close_code = close_code
        self.close_reason = close_reason
        self.during_connect = during_connect
        verb = "cannot connect to" if during_connect else "connection to"
        tail = "" if during_connect else " lost"
        # A space after the URI, not a colon: Pipecat masks credential-looking
        # query values in ErrorFrame texts up to the next space.
        super().__init__(f"{verb} {uri}{tail} - {cause}")


class NotConnectedError(WebsocketClientError):
    """An operation needed an open connection and there was none."""


def redact_uri(uri: str) -> str:
    """Return ``uri`` with everything that may be a credential masked.

    The password of the user info and every query value are replaced by
    ``***``; query names stay, so a reader still sees ``?token=***``. The
    scheme, host, port and path are kept as they are.

    Args:
        uri: A URI, valid or not.

    Returns:
        The URI, safe to log.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(name, REDACTED) for name, _ in pairs], safe="*")
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def error_category(failure: ConnectionFailure) -> ErrorCategory:
    """Return the Pipecat :class:`ErrorCategory` of a failure, for its ``ErrorFrame``.

    Args:
        failure: The failure.

    Returns:
        The category: authentication for HTTP 401, rate limit for 429,
        server for 5xx, connectivity for network-level failures, and so on.
    """
    status = failure.status_code
    if failure.kind is FailureKind.HTTP_STATUS and status is not None:
        if status == 401:
            return ErrorCategory.AUTHENTICATION
        if status == 403:
            return ErrorCategory.AUTHORIZATION
        if status == 429:
            return ErrorCategory.RATE_LIMIT
        if status >= 500:
            return ErrorCategory.SERVER
        return ErrorCategory.INVALID_REQUEST
    if failure.kind is FailureKind.HANDSHAKE:
        return ErrorCategory.INVALID_REQUEST
    if failure.kind is FailureKind.CALLBACK:
        return ErrorCategory.APPLICATION
    return ErrorCategory.CONNECTIVITY
