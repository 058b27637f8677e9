#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Who may ask the phone's server for what: the per-run token, hosts, origins, headers.

Pure functions of a request (no I/O), used by ``phone.server``:

- :func:`refusal` answers a request that must not go further: a duplicate
  ``Host`` or ``Origin`` (400), another host name (403: no DNS rebinding), a
  page of another origin opening ``/call`` (403), a missing or wrong token on
  anything but the page's public scripts (403, no detail);
- :func:`secure` puts the same headers on every response: a
  Content-Security-Policy that also forbids framing (``frame-ancestors
  'none'``), ``Cross-Origin-Resource-Policy: same-origin`` (another site
  cannot even embed a recording to read its length), ``nosniff``, and
  ``Referrer-Policy: no-referrer`` (the token in the page's address never
  leaves in a ``Referer``).

The token is a query parameter (``?token=...``) on every request: the page
keeps it from its own address (which no other origin can read) and adds it
to its fetches, its socket and its links. Not a cookie: cookies are per host,
not per port, so one would go to every other server on 127.0.0.1 as well.
"""

from __future__ import annotations

import hmac
import http
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

PUBLIC_PATHS = ("/phone.css", "/phone.js", "/worklets.js")
"""What is served without the token: the page's scripts and style, the same for everyone."""


def text_response(
    status: int, text: str, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    """A response with a short text body (``text`` ends with no newline: one is added)."""
    return body_response(status, (text + "\n").encode(), content_type)


def body_response(status: int, body: bytes, content_type: str) -> Response:
    """A response with ``body``, not to be cached."""
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def query_token(request: Request) -> str | None:
    """The request's one ``token`` query parameter (None if absent or given twice)."""
    tokens = parse_qs(urlsplit(request.path).query).get("token", [])
    return tokens[0] if len(tokens) == 1 else None


def token_ok(request: Request, token: str) -> bool:
    """Whether the request carries the run's token (compared in constant time)."""
    given = query_token(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def refusal(request: Request, *, hosts: set[str], token: str) -> Response | None:
    """The answer to a request that must go no further, or None to serve it.

    Args:
        request: The request.
        hosts: The ``Host`` values of this server (``127.0.0.1:PORT``, ...).
        token: The run's token.
    """
    for name in ("Host", "Origin"):
        if len(request.headers.get_all(name)) > 1:
            return text_response(400, f"Bad request: more than one {name} header")
    if request.headers.get("Host", "") not in hosts:
        return text_response(403, "Forbidden: not this server's address")
    path = urlsplit(request.path).path
    if path in PUBLIC_PATHS:
        return None
    if path == "/call":
        origin = request.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in hosts:
            return text_response(403, "Forbidden")
    if not token_ok(request, token):
        return text_response(403, "Forbidden")
    return None


def security_headers(port: int) -> list[tuple[str, str]]:
    """The headers every response of the server on ``port`` carries."""
    sockets = f"ws://127.0.0.1:{port} ws://localhost:{port}"
    return [
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            f"connect-src 'self' {sockets}; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'; object-src 'none'",
        ),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]


def secure(response: Response, port: int) -> Response:
    """Put :func:`security_headers` on ``response`` (replacing any of the same names)."""
    for name, value in security_headers(port):
        if name in response.headers:
            del response.headers[name]
        response.headers[name] = value
    return response
