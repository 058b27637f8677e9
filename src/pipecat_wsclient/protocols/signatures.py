#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A carrier's request signatures, computed with the carrier's own SDK (pure, no I/O).

A bot that checks that a request came from its carrier validates a
signature header made with the account's auth token:

- Twilio: ``X-Twilio-Signature``, base64 HMAC-SHA1 of the URL followed by
  the POST fields sorted by name, on the webhook and on the WebSocket
  upgrade (its URL, no fields); computed with the ``twilio`` package's
  ``RequestValidator`` (https://www.twilio.com/docs/usage/security#validating-requests).
- Plivo: ``X-Plivo-Signature-V3`` and ``X-Plivo-Signature-V3-Nonce``, base64
  HMAC-SHA256 of the URL, the sorted POST fields, a dot and the nonce;
  computed with the ``plivo`` package's ``signature_v3``
  (https://www.plivo.com/docs/voice/concepts/signature-validation).

- Vonage: ``Authorization: Bearer`` a JWT (HS256) signed with the account's
  signature secret, with ``iat``, ``jti``, ``iss: Vonage`` and, for a body,
  its ``payload_hash`` (SHA-256); on the webhook only (Vonage documents no
  signed WebSocket upgrade). Made with PyJWT; the ``vonage-jwt`` package's
  ``verify_signature`` accepts it
  (https://developer.vonage.com/en/getting-started/concepts/webhooks#validating-signed-webhooks).

Telnyx signs with its own Ed25519 private key, which only Telnyx holds: no
one else can make its signature, so it is not made here (:data:`SIGNED`
lists the carriers that are). The SDKs are optional: ``pip install
"pipecat-wsclient[carriers]"``.

Example::

    headers = sign("twilio", token, "https://bot.example/voice", {"CallSid": "CA..."})
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from urllib.parse import urlencode

SIGNED = {
    "twilio": "TWILIO_AUTH_TOKEN",
    "plivo": "PLIVO_AUTH_TOKEN",
    "vonage": "VONAGE_SIGNATURE_SECRET",
}
"""The carriers whose signatures are made, and the environment variable of their token."""

UPGRADE_SIGNED = ("twilio", "plivo")
"""The carriers that sign the WebSocket upgrade too (not only the webhook)."""


class SignatureUnavailable(RuntimeError):
    """The carrier's SDK is not installed (the message says what to install)."""


def sign(
    protocol: str, token: str, url: str, fields: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The signature headers the carrier sends with a request.

    Args:
        protocol: The carrier (one of :data:`SIGNED`).
        token: The account's auth token.
        url: The URL requested, exactly as the bot will rebuild it.
        fields: The POST form's fields (None or empty: a GET or a WebSocket upgrade).

    Returns:
        The headers to send.

    Raises:
        ValueError: For a carrier whose signature is not made here.
        SignatureUnavailable: When the carrier's SDK is missing.
    """
    fields = dict(fields or {})
    if protocol == "twilio":
        try:
            from twilio.request_validator import RequestValidator
        except ImportError:
            raise SignatureUnavailable(_missing("twilio")) from None
        return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, fields)}
    if protocol == "plivo":
        try:
            from plivo.utils.signature_v3 import (
                construct_get_url,
                construct_post_url,
                get_signature_v3,
            )
        except ImportError:
            raise SignatureUnavailable(_missing("plivo")) from None
        nonce = str(secrets.randbelow(10**20))
        base = construct_post_url(url, fields) if fields else construct_get_url(url, {})
        signature = get_signature_v3(token.encode(), base.decode(), nonce.encode())
        return {"X-Plivo-Signature-V3": signature.decode(), "X-Plivo-Signature-V3-Nonce": nonce}
    if protocol == "vonage":
        try:
            import jwt
        except ImportError:
            raise SignatureUnavailable(_missing("PyJWT")) from None
        claims: dict[str, object] = {
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
        }
        if fields:
            claims["payload_hash"] = hashlib.sha256(urlencode(fields).encode()).hexdigest()
        return {"Authorization": "Bearer " + jwt.encode(claims, token, algorithm="HS256")}
    raise ValueError(
        f"--auth-token: {protocol}'s signatures are not made here (only {', '.join(SIGNED)}'s)"
    )


def _missing(package: str) -> str:
    return (
        f"signing as {package} needs the {package!r} package: "
        'pip install "pipecat-wsclient[carriers]"'
    )
