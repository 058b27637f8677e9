#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A carrier's webhook, as the carrier makes it: the request, the answer, the stream (pure, no I/O).

When a call comes in, a carrier asks the bot's webhook what to do and reads
the stream to open from the answer:

- Twilio POSTs a form (``CallSid``, ``AccountSid``, ``From``, ``To``,
  ``CallStatus``, ``Direction``, ``ApiVersion``, ...) and reads TwiML:
  ``<Response><Connect><Stream url="wss://...">`` with ``<Parameter name
  value>`` children (https://www.twilio.com/docs/voice/twiml/stream and
  https://www.twilio.com/docs/usage/webhooks/voice-webhooks).
- Telnyx POSTs the same kind of form for TeXML (``CallSid``,
  ``CallSidLegacy``, ``ConnectionId``, ...) and reads TeXML, whose
  ``<Stream>`` is Twilio's (https://developers.telnyx.com/docs/voice/programmable-voice/texml-instruction-fetching).
- Plivo POSTs its answer-URL form (``CallUUID``, ``From``, ``To``,
  ``CallStatus``, ``Direction``, ``Event``) and reads Plivo XML:
  ``<Response><Stream bidirectional="true" contentType=... extraHeaders=...>wss://...</Stream>``
  (https://www.plivo.com/docs/voice/xml/the-stream-element).
- Vonage GETs its ``answer_url`` with ``to``, ``from``, ``uuid`` and
  ``conversation_uuid`` and reads an NCCO: a ``connect`` action whose
  endpoint is ``{"type": "websocket", "uri", "content-type", "headers"}``
  (https://developer.vonage.com/en/voice/voice-api/ncco-reference#connect).

Twilio, Telnyx and Plivo let the account pick ``GET`` instead (the number's
or application's webhook method; Pipecat's Plivo example answers ``GET``
only): :func:`as_get` is the same request with the fields in the query.
Exotel has no webhook (its stream URL is set in its dashboard). The ids made
for the request are the ones the stream's opening messages carry
(:attr:`StreamTarget.carrier`), and the answer's parameters are its custom
parameters (:attr:`StreamTarget.params`).

Example::

    request = webhook_request("twilio", "http://localhost:7860/")
    target = parse_answer("twilio", request, body, content_type)
    target = local_stream(target, request.url)  # Pipecat's runner: wss://None/ws
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

from pipecat_wsclient.protocols.telnyx import telnyx_call_control_id
from pipecat_wsclient.protocols.twilio import twilio_sid

WEBHOOK_CARRIERS = ("twilio", "telnyx", "plivo", "vonage")
"""The carriers that ask a webhook for the stream."""

MAX_ANSWER_BYTES = 256 * 1024
"""The most of a webhook's answer read (TwiML, XML and NCCOs are a few hundred bytes)."""

PLACES = ("From", "To", "Caller", "Called")
"""Twilio's fields on where each side is (``FromCity``, ...): empty, as for an unknown place."""

CALLER = "+15550100001"
CALLED = "+15550100002"
"""The numbers of the emulated call (from the range reserved for fiction)."""


class WebhookError(ValueError):
    """The webhook's answer names no stream we can open (the message says why, in one line)."""


@dataclass
class WebhookRequest:
    """The carrier's request to the bot's webhook.

    Parameters:
        protocol: The carrier.
        url: The webhook's URL.
        method: ``POST`` (a form) or ``GET`` (the fields in the query).
        fields: The request's fields, as the carrier names them.
        carrier: The call's ids, as the carrier serializer's keyword arguments.
    """

    protocol: str
    url: str
    method: str
    fields: dict[str, str]
    carrier: dict[str, str]

    @property
    def target(self) -> str:
        """The URL requested (with the fields in its query for ``GET``)."""
        if self.method == "POST":
            return self.url
        parts = urlsplit(self.url)
        query = "&".join(q for q in (parts.query, urlencode(self.fields)) if q)
        return urlunsplit(parts._replace(query=query))

    @property
    def body(self) -> bytes | None:
        """The form body of a ``POST`` (None for ``GET``)."""
        return urlencode(self.fields).encode() if self.method == "POST" else None


@dataclass
class StreamTarget:
    """The stream a webhook's answer names, and what the stream's opening carries.

    Parameters:
        url: The stream's URL as the answer names it.
        params: Its custom parameters (TwiML ``<Parameter>``, Plivo
            ``extraHeaders``, the NCCO endpoint's ``headers``).
        carrier: The call's ids for the carrier serializer.
        content_type: The audio format the answer asks for, if it names one.
        notes: What was done to the URL to dial it here, one line each.
    """

    url: str
    params: dict[str, str] = field(default_factory=dict)
    carrier: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    notes: list[str] = field(default_factory=list)


def webhook_request(protocol: str, url: str) -> WebhookRequest:
    """The request a carrier makes for a new inbound call, with fresh ids.

    Args:
        protocol: One of :data:`WEBHOOK_CARRIERS`.
        url: The bot's webhook (``http://`` or ``https://``).

    Returns:
        The request.

    Raises:
        ValueError: For a carrier with no webhook.
    """
    if protocol == "twilio":
        call_sid, account_sid = twilio_sid("CA"), twilio_sid("AC")
        fields = {
            "AccountSid": account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": CALLED,
            "Caller": CALLER,
            "Direction": "inbound",
            "From": CALLER,
            "To": CALLED,
            **{
                f"{who}{what}": "" for who in PLACES for what in ("City", "State", "Zip", "Country")
            },
        }
        return WebhookRequest(
            protocol, url, "POST", fields, {"call_sid": call_sid, "account_sid": account_sid}
        )
    if protocol == "telnyx":
        call_id = telnyx_call_control_id()
        account = str(uuid.uuid4())
        fields = {
            "AccountSid": account,
            "CallSid": call_id,
            "CallSidLegacy": call_id,
            "CallStatus": "ringing",
            "ConnectionId": str(secrets.randbelow(10**10)),
            "Direction": "inbound",
            "From": CALLER,
            "To": CALLED,
        }
        carrier = {
            "call_control_id": call_id,
            "user_id": account,
            "from_number": CALLER,
            "to_number": CALLED,
        }
        return WebhookRequest(protocol, url, "POST", fields, carrier)
    if protocol == "plivo":
        call_uuid = str(uuid.uuid4())
        fields = {
            "ALegRequestUUID": str(uuid.uuid4()),
            "ALegUUID": call_uuid,
            "CallStatus": "in-progress",
            "CallUUID": call_uuid,
            "CallerName": CALLER,
            "Direction": "inbound",
            "Event": "StartApp",
            "From": CALLER.lstrip("+"),
            "RequestUUID": str(uuid.uuid4()),
            "To": CALLED.lstrip("+"),
        }
        return WebhookRequest(protocol, url, "POST", fields, {"call_id": call_uuid})
    if protocol == "vonage":
        fields = {
            "to": CALLED.lstrip("+"),
            "from": CALLER.lstrip("+"),
            "endpoint_type": "phone",
            "uuid": uuid.uuid4().hex,
            "conversation_uuid": f"CON-{uuid.uuid4()}",
        }
        return WebhookRequest(protocol, url, "GET", fields, {})
    raise ValueError(
        f"--protocol {protocol} has no webhook (dial its stream's ws:// or wss:// URL); "
        f"webhooks: {', '.join(WEBHOOK_CARRIERS)}"
    )


def as_get(request: WebhookRequest) -> WebhookRequest:
    """The same request with ``GET``: the same fields and ids, in the URL's query.

    What a carrier sends when the account set the webhook's method to ``GET``
    (Twilio's and Telnyx's voice method, Plivo's ``answer_method``).
    """
    return replace(request, method="GET")


def parse_answer(request: WebhookRequest, body: bytes, content_type: str = "") -> StreamTarget:
    """The stream the webhook's answer names.

    Args:
        request: The request it answers.
        body: The answer's body.
        content_type: Its ``Content-Type``.

    Returns:
        The stream, with the request's ids.

    Raises:
        WebhookError: When the answer cannot be read or names no bidirectional stream.
    """
    if len(body) > MAX_ANSWER_BYTES:
        raise WebhookError(f"the webhook's answer is over {MAX_ANSWER_BYTES} bytes")
    if request.protocol == "vonage":
        target = _ncco(body)
    else:
        root = _xml(body, content_type)
        target = _plivo(root) if request.protocol == "plivo" else _twiml(root, request.protocol)
    target.carrier = {**request.carrier, **target.carrier}
    return target


def local_stream(target: StreamTarget, webhook_url: str) -> StreamTarget:
    """The stream URL dialable from here, as a local user of Pipecat's runner needs.

    Pipecat's development runner answers ``wss://None/ws`` when started
    without ``--proxy`` (it only knows its public host from that flag), and
    ``wss://`` even when it is served on plain HTTP: a stream with no real
    host goes to the webhook's host; a ``wss://`` stream on the webhook's
    own host, served on ``http://``, is dialed with ``ws://``. Each change
    is noted.

    Args:
        target: The stream as the answer named it.
        webhook_url: The webhook's URL.

    Returns:
        The target with the URL to dial and its notes.
    """
    hook = urlsplit(webhook_url)
    parts = urlsplit(target.url)
    url = target.url
    if parts.hostname in (None, "", "None", "none", "null", "undefined"):
        parts = parts._replace(netloc=hook.netloc)
        url = urlunsplit(parts)
        target.notes.append(
            f"the answer's stream has no host ({target.url}): dialing the webhook's host "
            f"{hook.netloc} (Pipecat's runner without --proxy answers wss://None/...)"
        )
    if parts.scheme == "wss" and hook.scheme == "http" and parts.netloc == hook.netloc:
        url = urlunsplit(parts._replace(scheme="ws"))
        target.notes.append(
            f"the stream is wss:// on the webhook's own host, served on plain http://: "
            f"dialing {url.split('?')[0]}"
        )
    target.url = url
    return target


# -- reading answers --------------------------------------------------------------


def _xml(body: bytes, content_type: str) -> ElementTree.Element:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise WebhookError("the webhook's XML answer declares a DOCTYPE or entities (refused)")
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        kind = content_type.split(";")[0] or "no content type"
        start = body[:60].decode("utf-8", "replace").replace("\n", " ")
        raise WebhookError(
            f"the webhook's answer is not XML ({kind}; {e}; it begins {start!r})"
        ) from None


def _twiml(root: ElementTree.Element, protocol: str) -> StreamTarget:
    """TwiML (Twilio) or TeXML (Telnyx): ``<Connect><Stream url>`` with ``<Parameter>``s."""
    if root.tag != "Response":
        raise WebhookError(f"the webhook's answer is not TwiML (root <{root.tag}>, not <Response>)")
    stream = root.find("Connect/Stream")
    if stream is None:
        if root.find("Start/Stream") is not None:
            raise WebhookError(
                "the answer's <Start><Stream> is a one-way stream (the bot cannot speak on it); "
                "a voice bot answers <Connect><Stream>"
            )
        verbs = ", ".join(f"<{child.tag}>" for child in root) or "nothing"
        raise WebhookError(f"the answer has no <Connect><Stream> (it holds {verbs})")
    url = (stream.get("url") or "").strip()
    if not url:
        raise WebhookError("the answer's <Stream> has no url attribute")
    params = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    carrier: dict[str, str] = {}
    content_type = None
    if protocol == "telnyx":
        content_type = stream.get("bidirectionalCodec")
        if content_type:
            carrier["encoding"] = content_type
        rate = stream.get("bidirectionalSamplingRate")
        if rate:
            carrier["sample_rate"] = rate
    return StreamTarget(_ws_url(url), params=params, carrier=carrier, content_type=content_type)


def _plivo(root: ElementTree.Element) -> StreamTarget:
    """Plivo XML: ``<Stream bidirectional="true" contentType extraHeaders>url</Stream>``."""
    if root.tag != "Response":
        raise WebhookError(f"the webhook's answer is not Plivo XML (root <{root.tag}>)")
    stream = root.find("Stream")
    if stream is None:
        verbs = ", ".join(f"<{child.tag}>" for child in root) or "nothing"
        raise WebhookError(f"the answer has no <Stream> (it holds {verbs})")
    if (stream.get("bidirectional") or "false").lower() != "true":
        raise WebhookError(
            'the answer\'s <Stream> is not bidirectional="true" (the bot cannot speak on it)'
        )
    url = (stream.text or "").strip()
    if not url:
        raise WebhookError("the answer's <Stream> names no URL")
    params = {}
    for pair in (stream.get("extraHeaders") or "").split(","):
        key, eq, value = pair.partition("=")
        if eq and key.strip():
            params[key.strip()] = value.strip()
    content_type = stream.get("contentType")
    carrier = {"content_type": content_type} if content_type else {}
    return StreamTarget(_ws_url(url), params=params, carrier=carrier, content_type=content_type)


def _ncco(body: bytes) -> StreamTarget:
    """A Vonage NCCO: the first ``connect`` action with a ``websocket`` endpoint."""
    try:
        ncco: Any = json.loads(body)
    except ValueError as e:
        raise WebhookError(f"the webhook's answer is not an NCCO (not JSON: {e})") from None
    if not isinstance(ncco, list):
        raise WebhookError("the webhook's answer is not an NCCO (a JSON list of actions)")
    for action in ncco:
        if not isinstance(action, dict) or action.get("action") != "connect":
            continue
        for endpoint in action.get("endpoint") or []:
            if isinstance(endpoint, dict) and endpoint.get("type") == "websocket":
                url = str(endpoint.get("uri") or "").strip()
                if not url:
                    raise WebhookError("the NCCO's websocket endpoint has no uri")
                headers = endpoint.get("headers") or {}
                params = (
                    {str(k): _text(v) for k, v in headers.items()}
                    if isinstance(headers, dict)
                    else {}
                )
                content_type = str(endpoint.get("content-type") or "audio/l16;rate=16000")
                rate = content_type.partition("rate=")[2].split(";")[0].strip()
                return StreamTarget(
                    _ws_url(url),
                    params=params,
                    carrier={"sample_rate": rate} if rate else {},
                    content_type=content_type,
                )
    actions = ", ".join(str(a.get("action")) for a in ncco if isinstance(a, dict)) or "none"
    raise WebhookError(
        f"the NCCO has no connect action to a websocket endpoint (actions: {actions})"
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _ws_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in ("ws", "wss"):
        raise WebhookError(
            f"the answer's stream URL is not ws:// or wss:// ({scheme or 'no scheme'})"
        )
    return url
