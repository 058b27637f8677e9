"""Error classification, messages and URI redaction (no sockets)."""

import socket
import ssl

import pytest
from pipecat.utils.errors import ErrorCategory
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from pipecat_wsclient import ConnectionFailure, FailureKind, WebsocketClientParams, redact_uri
from pipecat_wsclient.errors import error_category
from pipecat_wsclient.session import failure_from_exception

URI = "ws://h:1/ws?token=***"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ws://h:1/ws?token=abc&room=r1", "ws://h:1/ws?token=***&room=***"),
        ("wss://user:pw@h/x", "wss://user:***@h/x"),
        ("wss://tok@h/x", "wss://***@h/x"),
        ("ws://h/plain", "ws://h/plain"),
        ("ws://h/p?key=a%20b#frag", "ws://h/p?key=***#***"),
        ("wss://h/ws/sk_live_51HxYzAbCdEf?room=r", "wss://h/ws/***?room=***"),
        ("wss://h/media/eyJhbGciOiJIUzI1NiJ9.e30.sig", "wss://h/media/***"),
        ("wss://h/token/abc123/ws", "wss://h/token/***/ws"),
        ("wss://h/v1/calls/3f2a9b0c4d5e6f708192a3b4c5d6e7f8", "wss://h/v1/calls/***"),
    ],
)
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_the_session_names_the_redacted_uri():
    """What ``call --json``, JUnit and plot titles show comes from ``session.uri``."""
    from pipecat_wsclient import WebsocketClientTransport

    t = WebsocketClientTransport(
        "wss://bot.example.com/ws/sk_live_51HxYzAbCdEf?token=t1", WebsocketClientParams()
    )
    assert t.session.uri == "wss://bot.example.com/ws/***?token=***"
    with pytest.raises(ValueError, match=r"invalid WebSocket URI 'http://h/\*\*\*'") as info:
        WebsocketClientTransport("http://h/sk_live_51HxYzAbCdEf", WebsocketClientParams())
    assert "sk_live" not in str(info.value)


def failure(exc, **kw):
    return failure_from_exception(exc, URI, WebsocketClientParams(open_timeout=3), **kw)


def http_status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "Unauthorized" if code == 401 else "X", Headers()))


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (ConnectionRefusedError(111, "Connection refused"), FailureKind.REFUSED, "refused"),
        (socket.gaierror(-2, "Name or service not known"), FailureKind.DNS, "not resolved"),
        (TimeoutError(), FailureKind.TIMEOUT, "open_timeout=3"),
        (ssl.SSLError(1, "bad"), FailureKind.TLS, "TLS"),
        (OSError(113, "No route to host"), FailureKind.NETWORK, "No route to host"),
    ],
)
def test_connect_failures_name_uri_and_cause(exc, kind, text):
    f = failure(exc)
    assert f.kind is kind
    assert str(f).startswith(f"cannot connect to {URI} - ")
    assert text in str(f)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (401, ErrorCategory.AUTHENTICATION),
        (403, ErrorCategory.AUTHORIZATION),
        (404, ErrorCategory.INVALID_REQUEST),
        (429, ErrorCategory.RATE_LIMIT),
        (500, ErrorCategory.SERVER),
        (503, ErrorCategory.SERVER),
    ],
)
def test_http_status(code, category):
    f = failure(http_status(code))
    assert f.kind is FailureKind.HTTP_STATUS
    assert f.status_code == code
    assert f"HTTP {code}" in str(f)
    assert error_category(f) is category


def test_remote_close_names_code_and_reason():
    f = failure(ConnectionClosedError(Close(1001, "bye"), None), during_connect=False)
    assert f.kind is FailureKind.CLOSED
    assert f.close_code == 1001
    assert str(f) == f"connection to {URI} lost - server closed with code 1001 (going away): bye"


def test_abnormal_close():
    f = failure(ConnectionClosedError(None, None), during_connect=False)
    assert f.close_code == 1006
    assert "1006" in str(f)


def test_message_too_big():
    f = failure(ConnectionClosedError(None, Close(1009, "over size limit")), during_connect=False)
    assert f.kind is FailureKind.MESSAGE_TOO_BIG
    assert "1009" in str(f) and "max_message_size" in str(f)


def test_keepalive_timeout():
    f = failure(
        ConnectionClosedError(None, Close(1011, "keepalive ping timeout")), during_connect=False
    )
    assert f.kind is FailureKind.KEEPALIVE
    assert error_category(f) is ErrorCategory.CONNECTIVITY


def test_failure_is_our_error_type():
    from pipecat_wsclient import WebsocketClientError

    assert isinstance(failure(TimeoutError()), WebsocketClientError)
    assert isinstance(failure(TimeoutError()), ConnectionFailure)


def test_websockets_debug_log_is_redacted():
    from harness import websockets_debug_log
    from pipecat_wsclient.session import WEBSOCKETS_LOGGER

    with websockets_debug_log() as lines:
        WEBSOCKETS_LOGGER.debug("> GET %s HTTP/1.1", "/ws?token=SECRET1&room=r")
        WEBSOCKETS_LOGGER.debug("> %s: %s", "Authorization", "Bearer SECRET2")
        WEBSOCKETS_LOGGER.debug("> %s: %s", "X-Api-Key", "SECRET3")
        WEBSOCKETS_LOGGER.debug("> %s: %s", "Host", "example.com")
        WEBSOCKETS_LOGGER.debug("> GET %s HTTP/1.1", "/ws/sk_live_SECRET4/token/SECRET5")
        WEBSOCKETS_LOGGER.info("connect failed: InvalidURI: wss://h/x/AKIASECRET6AAAA isn't...")
    assert lines == [
        "> GET /ws?token=***&room=*** HTTP/1.1",
        "> Authorization: ***",
        "> X-Api-Key: ***",
        "> Host: example.com",
        "> GET /ws/***/token/*** HTTP/1.1",
        "connect failed: InvalidURI: wss://h/x/*** isn't...",
    ]
