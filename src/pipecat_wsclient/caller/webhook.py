#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Dial through the bot's webhook, as the carrier does: request, answer, stream.

Given an ``http://`` or ``https://`` URL and a carrier's protocol, every
front end asks the webhook for the stream before it dials
(:func:`through_webhook`): the carrier's request with fresh call ids (signed
when an auth token is given), its answer read
(:mod:`pipecat_wsclient.protocols.webhook`), and the line options changed to
dial the stream it names, with the call's ids and the answer's parameters in
the stream's opening messages and, signed, the WebSocket upgrade too.

Example::

    line = await through_webhook(LineOptions("http://localhost:7860/", protocol="twilio"))
    for note in line.notes:
        print(note)
"""

from __future__ import annotations

import os
import ssl as ssl_module
from dataclasses import replace
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
from loguru import logger

from pipecat_wsclient.caller.builder import LineOptions
from pipecat_wsclient.errors import ConnectionFailure, FailureKind, redact_uri
from pipecat_wsclient.protocols.signatures import SIGNED, UPGRADE_SIGNED, sign
from pipecat_wsclient.protocols.webhook import (
    MAX_ANSWER_BYTES,
    WEBHOOK_CARRIERS,
    WebhookError,
    WebhookRequest,
    as_get,
    local_stream,
    parse_answer,
    webhook_request,
)

USER_AGENTS = {"twilio": "TwilioProxy/1.1", "plivo": "PlivoHTTP", "telnyx": "Telnyx-Webhook"}
"""The ``User-Agent`` each carrier's webhook requests carry (others: ours)."""


def is_webhook(uri: str) -> bool:
    """Whether ``uri`` is a webhook's (``http://`` or ``https://``), not a stream's."""
    return urlsplit(uri).scheme in ("http", "https")


def as_stream_uri(uri: str) -> str:
    """A webhook's URL with a WebSocket scheme (``http`` -> ``ws``, ``https`` -> ``wss``)."""
    parts = urlsplit(uri)
    return parts._replace(
        scheme={"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    ).geturl()


def auth_token(protocol: str, given: str | None) -> str | None:
    """The carrier's auth token: ``given``, else the carrier's usual environment variable."""
    if given:
        return given
    variable = SIGNED.get(protocol)
    return os.environ.get(variable) or None if variable else None


Line = TypeVar("Line", bound=LineOptions)


async def through_webhook(line: Line) -> Line:
    """The line options to dial the stream the bot's webhook names.

    Args:
        line: Options whose ``uri`` is the webhook's URL and ``protocol`` a carrier's.

    Returns:
        A copy dialing the stream: its URI (made dialable here:
        :func:`~pipecat_wsclient.protocols.webhook.local_stream`), the call's
        ids and the answer's parameters added to ``carrier`` and ``params``
        (those given win), the upgrade's signature in ``headers``, and what
        was done in ``notes``.

    A webhook that refuses the carrier's ``POST`` with HTTP 405 (Method Not
    Allowed) is asked again with ``GET``, as the carrier asks it when the
    account's webhook method is ``GET`` (Pipecat's Plivo example serves only
    that); a note says so.

    Raises:
        ValueError: For a protocol with no webhook, or a token for a carrier
            whose signature is not made here (usage errors).
        ConnectionFailure: When the webhook cannot be reached (``REFUSED``,
            ``TIMEOUT``...), answers an HTTP error (``HTTP_STATUS``) or names
            no stream (``HANDSHAKE``), in one line with the URL redacted.
    """
    url, protocol = line.uri, line.protocol
    check_webhook(url, protocol, line.auth_token)
    request = webhook_request(protocol, url)
    token = auth_token(protocol, line.auth_token)
    notes: list[str] = []
    try:
        body, content_type = await _ask(request, line, token)
    except ConnectionFailure as e:
        if not (request.method == "POST" and e.status_code == 405):
            raise
        request = as_get(request)
        notes.append(
            f"webhook {redact_uri(url)} refused POST (HTTP 405): asked it with GET, "
            "as the carrier does when the webhook's method is set to GET"
        )
        try:
            body, content_type = await _ask(request, line, token)
        except ConnectionFailure as again:
            raise ConnectionFailure(
                again.kind,
                again.uri,
                f"{again.cause} (with GET; POST was refused with HTTP 405)",
                status_code=again.status_code,
            ) from None
    try:
        target = parse_answer(request, body, content_type)
    except WebhookError as e:
        raise ConnectionFailure(FailureKind.HANDSHAKE, redact_uri(url), f"webhook: {e}") from None
    named = target.url
    target = local_stream(target, url)
    notes += [f"webhook {redact_uri(url)} answered: stream {redact_uri(named)}", *target.notes]
    stream_headers = dict(line.headers)
    if token and protocol in UPGRADE_SIGNED:
        # The upgrade is signed over the stream's URL as the answer named it:
        # the URL the bot knows itself by.
        stream_headers.update(sign(protocol, token, named))
    for note in notes:
        logger.info(note)
    return replace(
        line,
        uri=target.url,
        carrier={**target.carrier, **line.carrier},
        params={**target.params, **line.params},
        headers=stream_headers,
        notes=[*line.notes, *notes],
    )


def check_webhook(url: str, protocol: str, token: str | None) -> None:
    """Fail now, before any request, if this webhook cannot be dialed as asked.

    Raises:
        ValueError: One line: the protocol has no webhook, or an auth token
            was given for a carrier whose signature is not made here.
    """
    if protocol not in WEBHOOK_CARRIERS:
        raise ValueError(
            f"{redact_uri(url)}: --protocol {protocol} has no webhook; dial the stream's ws:// "
            f"or wss:// URL (webhooks: {', '.join(WEBHOOK_CARRIERS)})"
        )
    if token and protocol not in SIGNED:
        raise ValueError(
            f"--auth-token: {protocol}'s signatures are not made here (only {', '.join(SIGNED)}'s)"
        )


async def _ask(request: WebhookRequest, line: LineOptions, token: str | None) -> tuple[bytes, str]:
    """The webhook's answer to ``request``: the carrier's headers, signed with ``token`` if any."""
    headers = {"User-Agent": USER_AGENTS.get(request.protocol, "pipecat-wsclient")}
    if request.method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        # A GET is signed over its URL with the query, as the carriers sign it.
        fields = request.fields if request.body else None
        headers.update(sign(request.protocol, token, request.target, fields))
    return await _fetch(request, headers, line, token)


async def _fetch(
    request: WebhookRequest,
    headers: dict[str, str],
    line: LineOptions,
    token: str | None,
) -> tuple[bytes, str]:
    """The webhook's answer (body, content type); one-line errors."""
    target = request.target
    safe = redact_uri(target)
    timeout = aiohttp.ClientTimeout(total=max(line.open_timeout, 1.0))
    ssl: ssl_module.SSLContext | bool = not line.insecure
    if line.cafile is not None:
        ssl = ssl_module.create_default_context(cafile=str(line.cafile))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(
                request.method,
                target,
                data=request.body,
                headers=headers,
                allow_redirects=False,
                ssl=ssl,
            ) as response:
                status, reason = response.status, response.reason or ""
                content_type = response.headers.get("Content-Type", "")
                location = response.headers.get("Location", "")
                data = await response.content.read(MAX_ANSWER_BYTES + 1)
    except TimeoutError:
        raise ConnectionFailure(
            FailureKind.TIMEOUT, safe, f"webhook: no answer within {timeout.total:g} s"
        ) from None
    except aiohttp.ClientConnectorError as e:
        kind = (
            FailureKind.REFUSED
            if isinstance(e.os_error, ConnectionRefusedError)
            else FailureKind.NETWORK
        )
        raise ConnectionFailure(kind, safe, f"webhook: {e.os_error or e}") from None
    except (aiohttp.ClientError, OSError) as e:
        raise ConnectionFailure(
            FailureKind.NETWORK, safe, f"webhook: {e or type(e).__name__}"
        ) from None

    def refused(why: str) -> ConnectionFailure:
        return ConnectionFailure(
            FailureKind.HTTP_STATUS,
            safe,
            f"webhook: HTTP {status} {reason}{why}",
            status_code=status,
        )

    if 300 <= status < 400:
        raise refused(
            f", redirected to {redact_uri(location)} (not followed: give the webhook's final URL)"
        )
    if status in (401, 403):
        if token:
            why = f"the bot refused the request's signature (signed with {protocol_token(line)})"
        else:
            variable = SIGNED.get(line.protocol)
            why = "if it validates the carrier's signature, give its auth token" + (
                f" (--auth-token or ${variable})" if variable else ""
            )
        raise refused(f": {why}")
    if status >= 400:
        raise refused("")
    return data, content_type


def explain_refusal(failure: ConnectionFailure, line: LineOptions) -> ConnectionFailure:
    """A stream's 401/403 at the upgrade, when we signed it, says the signature may be why.

    Args:
        failure: A connection failure of the call.
        line: The line options the stream was dialed with (after :func:`through_webhook`).

    Returns:
        ``failure``, or a copy whose cause names the signature.
    """
    signed = any(name in line.headers for name in SIGNATURE_HEADERS)
    if not (
        signed and failure.kind == FailureKind.HTTP_STATUS and failure.status_code in (401, 403)
    ):
        return failure
    cause = (
        f"{failure.cause}: the bot refused the upgrade's signature "
        f"(signed with {protocol_token(line)})"
    )
    return ConnectionFailure(failure.kind, failure.uri, cause, status_code=failure.status_code)


SIGNATURE_HEADERS = ("X-Twilio-Signature", "X-Plivo-Signature-V3", "Authorization")
"""The headers that carry a carrier's signature."""


def protocol_token(line: LineOptions) -> str:
    """Where the auth token came from, for messages (never the token)."""
    if line.auth_token:
        return "--auth-token"
    return f"${SIGNED.get(line.protocol, 'the auth token')}"
