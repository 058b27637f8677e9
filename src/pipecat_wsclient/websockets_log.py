#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The logger ``websockets`` writes to for our connections, with secrets masked.

``websockets`` logs handshake requests and responses at debug level, with
the URI's query string and the headers, and every frame with its data.
Every record that goes through :data:`WEBSOCKETS_LOGGER` has, before any
handler sees it: the request target of ``> GET`` and every ``ws://``,
``wss://``, ``http://`` or ``https://`` URI in the text redacted by
:func:`~pipecat_wsclient.errors.redact_uri` (query values, credential-looking
path segments); any other query value replaced by ``***``; the value of every
header replaced by ``***`` except a short list of harmless ones
(:data:`SAFE_HEADERS`: a header named ``X-Session-Credential`` is masked
too); the data of text, binary and continuation frames, both ways,
replaced by ``***`` (a hello can carry credentials, a carrier's ``start``
its custom parameters), keeping the frame type and size.
"""

from __future__ import annotations

import logging
import re

from pipecat_wsclient.errors import redact_text, redact_uri

SAFE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-accept",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "user-agent",
        "server",
        "date",
        "content-type",
        "content-length",
    }
)
"""Handshake headers whose values are logged; every other header's value is masked."""

_QUERY_VALUE = re.compile(r"([?&][^=&\s]+=)[^&\s#]*")
_HEADER = re.compile(r"^([<>] ([A-Za-z0-9!#$%&'*+.^_`|~-]+): ).*$", re.DOTALL)
_REQUEST_LINE = re.compile(r"^(> GET )(\S+)( HTTP/1\.1)$")
_DATA_FRAME = re.compile(r"^([<>] (?:TEXT|BINARY|CONT) ).*( \[[^\]]*\])$", re.DOTALL)


def redact_line(message: str) -> str:
    """Mask what may be a secret in one of websockets' debug lines.

    Args:
        message: The formatted log message.

    Returns:
        The message with query values, credential-looking path segments,
        unsafe header values and frame data masked.
    """
    frame = _DATA_FRAME.match(message)
    if frame is not None:
        return f"{frame.group(1)}***{frame.group(2)}"
    header = _HEADER.match(message)
    if header is not None and header.group(2).lower() not in SAFE_HEADERS:
        return f"{header.group(1)}***"
    request = _REQUEST_LINE.match(message)
    if request is not None:
        return f"{request.group(1)}{redact_uri(request.group(2))}{request.group(3)}"
    return _QUERY_VALUE.sub(r"\1***", redact_text(message))


class _RedactingFilter(logging.Filter):
    """Apply :func:`redact_line` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_line(record.getMessage()), ()
        return True


WEBSOCKETS_LOGGER = logging.getLogger("pipecat_wsclient.websockets")
"""The standard-library logger ``websockets`` logs to for our connections, redacted."""
WEBSOCKETS_LOGGER.addFilter(_RedactingFilter())
