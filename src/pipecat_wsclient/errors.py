#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Our small exception tree, and the one URI redaction for everything we show.

Nothing here does I/O. ``session.py`` maps exceptions from ``websockets`` and
the OS onto these classes, once, at its boundary; everything above it only
sees :class:`WebsocketClientError` and its subclasses.
"""

from __future__ import annotations

import enum
import re
from urllib.parse import unquote

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


SECRET_PREFIXES = (
    "sk_",
    "sk-",
    "pk_",
    "rk_",
    "whsec_",
    "xox",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "hf_",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJ",
    "Bearer",
    "bearer",
    "Basic ",
    "basic ",
)
"""Prefixes of issued credentials (Stripe, Slack, GitHub, GitLab, Hugging Face,
AWS, Google, JWTs, ``Authorization`` values): a path segment that starts with
one and has at least four more characters is masked."""

CREDENTIAL_NAMES = frozenset(
    {
        "token",
        "tokens",
        "accesstoken",
        "authtoken",
        "apitoken",
        "idtoken",
        "refreshtoken",
        "key",
        "keys",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "secret",
        "secrets",
        "clientsecret",
        "auth",
        "authorization",
        "signature",
        "sig",
        "password",
        "passwd",
        "pwd",
        "bearer",
        "credential",
        "credentials",
        "jwt",
    }
)
"""Names (lower case, without ``-``, ``_`` and ``.``) that announce a credential:
the path segment after one is masked (``/token/abc123`` -> ``/token/***``), and
so is a segment ``name=value`` with one."""

OPAQUE_MIN_LENGTH = 20
"""A path segment this long or longer is masked if it holds an opaque run."""

_PLAIN_RUN_MAX = 6
"""A run of letters and digits mixing both is still plain up to this length (``v2``, ``gpt4o``)."""

_RUN = re.compile(r"[A-Za-z0-9]+")
_URI_PARTS = re.compile(
    r"(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL
)
"""RFC 3986, appendix B: scheme, authority, path, query, fragment; it matches any text."""
_URI_IN_TEXT = re.compile(r"\b(?:wss?|https?)://[^\s'\"<>]+", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _name(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "").replace(".", "")


def looks_like_secret(segment: str, after: str = "") -> bool:
    """Whether one path segment (or query name, or user name) may be a credential.

    The segment is judged percent-decoded, without its ``;`` parameters. It
    is a credential when one of these holds, checked in this order:

    1. ``after`` (the segment before it) is a credential name
       (:data:`CREDENTIAL_NAMES`), or the segment is ``name=value`` with one.
    2. It starts with a known prefix (:data:`SECRET_PREFIXES`) followed by
       at least four characters.
    3. It is a UUID (``8-4-4-4-12`` hex digits with the dashes): **kept**. A
       UUID names a call or a session; it is not a key by convention, and a
       call id is what one needs to find a call in the bot's logs. The same
       32 hex digits without dashes are masked by rule 4: a hex token and
       a dashless UUID cannot be told apart.
    4. It has :data:`OPAQUE_MIN_LENGTH` (20) characters or more, and one of
       its runs of ASCII letters and digits mixes letters and digits over
       more than six characters: an API key, a hex or base64/base64url
       token, a JWT, a carrier's 34-character SID.

    Everything else stays: words, numbers, short ids (``v2``, ``call-7``),
    dates, UUIDs, and any segment under 20 characters that no prefix or
    name gives away. Not caught: a long secret made only of letters or only
    of digits, or a short one (under 20 characters) that neither a prefix
    nor the segment before it announces.

    ===============================  ============  =======  ===============
    segment                          after         masked   rule
    ===============================  ============  =======  ===============
    ``ws``, ``media-stream``         ``""``        no       plain words
    ``v1``, ``v2``, ``2010-04-01``   ``""``        no       short / digits
    ``customer-support-bot-v2``      ``""``        no       runs are plain
    ``3f2a...`` (UUID, 36 chars)     ``calls``     no       3: a call id
    ``abc123``                       ``token``     yes      1: after a name
    ``api_key=abc``                  ``""``        yes      1: name=value
    ``sk_live_51HxYz``               ``""``        yes      2: prefix
    ``eyJhbGciOiJIUzI1NiJ9.e30.x``   ``""``        yes      2: JWT
    ``AKIAIOSFODNN7EXAMPLE``         ``""``        yes      2: AWS key id
    ``Bearer%20abcd``                ``""``        yes      2: prefix
    ``sk-SK``                        ``""``        no       2: too short
    ``3f2a9b0c...`` (32 hex)         ``""``        yes      4: opaque run
    ``MZ18ad3ab5a668481ce02b83e7``   ``""``        yes      4: opaque run
    ``12345678901234567890123``      ``""``        no       digits only
    ===============================  ============  =======  ===============

    Args:
        segment: The raw segment, as it appears in the URI.
        after: The raw segment before it (``""`` for the first one).

    Returns:
        True if the segment should be shown as ``***``.
    """
    text = unquote(segment)
    if _name(unquote(after)) in CREDENTIAL_NAMES:
        return True
    name, equals, _ = text.partition("=")
    if equals and _name(name) in CREDENTIAL_NAMES:
        return True
    if any(text.startswith(p) and len(text) >= len(p) + 4 for p in SECRET_PREFIXES):
        return True
    if len(text) < OPAQUE_MIN_LENGTH or _UUID.fullmatch(text):
        return False
    return any(
        len(run) > _PLAIN_RUN_MAX and not run.isalpha() and not run.isdigit()
        for run in _RUN.findall(text)
    )


def redact_path(path: str) -> str:
    """Return a URI path with the segments that may be credentials masked.

    Each segment is judged by :func:`looks_like_secret` (with the segment
    before it) and replaced by ``***`` if it may be a credential. Matrix
    parameters (``;name=value``) keep their names and lose their values,
    like the query: ``/ws;jsessionid=A1`` -> ``/ws;jsessionid=***``.

    Args:
        path: The path (or any ``/``-separated text).

    Returns:
        The path, safe to show; the same path if nothing in it looks secret.
    """
    kept: list[str] = []
    before = ""
    for segment in path.split("/"):
        base, semicolon, params = segment.partition(";")
        shown = REDACTED if looks_like_secret(base, before) else base
        if semicolon:
            shown += ";" + ";".join(_redact_param(param) for param in params.split(";"))
        kept.append(shown)
        before = base
    return "/".join(kept)


def _redact_param(param: str) -> str:
    name, equals, _ = param.partition("=")
    name = REDACTED if looks_like_secret(name) else name
    return f"{name}={REDACTED}" if equals else name


def redact_uri(uri: str) -> str:
    """Return ``uri`` with everything that may be a credential masked.

    The one redaction for every URI we show (messages, logs, ``--json``,
    JUnit, plot titles). Replaced by ``***``: the password of the user
    info (and the user name when it looks like a token or has no password),
    every query value and matrix parameter value, every query key without a
    value (``?SECRET`` -> ``?***``: a bare key may be the secret), the
    fragment, and the path segments and query names that
    :func:`looks_like_secret` flags. Query names with a value stay, so a
    reader still sees ``?token=***``; the scheme, host, port and ordinary
    path segments are kept as they are::

        wss://u:pw@h/ws/sk_live_51Hx?token=abc#f -> wss://u:***@h/ws/***?token=***#***
        wss://h/v1/calls/<uuid>/stream           -> unchanged

    Any text is split by the generic syntax of RFC 3986 (appendix B), which
    fits every string, and put back together with the same delimiters: only
    the masked parts change (a query loses its empty ``&&`` pairs).
    ``urllib.parse`` is not used for this: its
    round trip changes some texts (``ws:////`` becomes ``ws://``), so the
    result would not be stable. It never raises and it is idempotent:
    ``redact_uri(redact_uri(x)) == redact_uri(x)``.

    Args:
        uri: A URI, valid or not, or a request target (``/ws?token=x``).

    Returns:
        The URI, safe to show.
    """
    try:
        return _redact_uri(uri)
    except Exception:  # a redaction must not turn showing a URI into a crash
        return REDACTED


def redact_text(text: str) -> str:
    """Return ``text`` with every ``ws``, ``wss``, ``http`` or ``https`` URI in it redacted.

    For free text that may quote a URI: an exception's message (websockets'
    ``InvalidURI`` of a redirect's ``Location``, ``InvalidProxy`` with the
    proxy's password), a log line. A URI runs from its scheme to the next
    space, quote or angle bracket, and goes through :func:`redact_uri`::

        redact_text("InvalidURI('wss://h/ws/sk_live_51Hx', 'bad')")
        # -> "InvalidURI('wss://h/ws/***', 'bad')"

    Args:
        text: Any text.

    Returns:
        The text, its URIs safe to show; idempotent, like :func:`redact_uri`.
    """
    return _URI_IN_TEXT.sub(lambda uri: redact_uri(uri.group(0)), text)


def _redact_uri(uri: str) -> str:
    match = _URI_PARTS.fullmatch(uri)
    if match is None:  # cannot happen: every group is optional
        return REDACTED
    scheme, authority, path, query, fragment = match.groups()
    shown = "" if scheme is None else f"{scheme}:"
    if authority is not None:
        shown += f"//{_redact_authority(authority)}"
    shown += redact_path(path)
    if query is not None:
        shown += f"?{_redact_query(query)}"
    if fragment is not None:
        shown += f"#{REDACTED}" if fragment else "#"
    return shown


def _redact_authority(authority: str) -> str:
    if "@" not in authority:
        return authority
    userinfo, _, hostport = authority.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if colon and not looks_like_secret(user):
        return f"{user}:{REDACTED}@{hostport}"
    return f"{REDACTED}@{hostport}"


def _redact_query(query: str) -> str:
    shown = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if not pair:
            continue
        if not equals:  # a bare key may be the secret itself: ?sk_live_... or ?hunter2
            shown.append(REDACTED)
        elif looks_like_secret(name.replace("+", "%20")):
            shown.append(f"{REDACTED}={REDACTED}")
        else:
            shown.append(f"{name}={REDACTED}")
    return "&".join(shown)


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
