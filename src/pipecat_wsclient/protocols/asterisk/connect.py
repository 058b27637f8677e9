#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""How to dial Asterisk's ``/media`` endpoint: the URI and the transport parameters.

Sources ([WS-DOC], [WS-SRC], [WS-EX]) are listed in ``docs/asterisk.md``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.protocols.asterisk.serializer import AsteriskSerializer

MEDIA_SUBPROTOCOL = "media"
"""The subprotocol chan_websocket registers for incoming connections [WS-SRC
``ast_websocket_sub_protocol_alloc("media")``] and the official client offers [WS-EX]."""

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9._~-]+$")


def asterisk_media_uri(base: str, connection_id: str) -> str:
    """The URI to dial for an ``INCOMING`` WebSocket channel.

    Asterisk serves incoming media connections at ``/media/<connection_id>``
    of its HTTP server [WS-DOC "Incoming Connections"], where the id is the
    channel's ``MEDIA_WEBSOCKET_CONNECTION_ID``.

    Args:
        base: Asterisk's HTTP server, e.g. ``ws://pbx:8088`` or
            ``wss://pbx.example.com:8089`` (``http(s)://`` is turned into
            ``ws(s)://``). A path (an ``http.conf`` ``prefix``) is kept; a
            trailing ``/media`` is not repeated.
        connection_id: The channel's ``MEDIA_WEBSOCKET_CONNECTION_ID``.

    Returns:
        ``<base>/media/<connection_id>``.

    Raises:
        ValueError: If ``base`` is not a ws/wss/http/https URI with a host, or
            the id is empty or has characters that would need escaping
            (Asterisk looks the id up without decoding the URI [WS-SRC
            ``no_decode_uri = 1``], so it must be used verbatim).
    """
    parts = urlsplit(base.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a ws://, wss://, http:// or https:// URI with a host: {base!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the base URI must not have a query or fragment: {base!r}")
    if not connection_id or not _CONNECTION_ID.match(connection_id):
        raise ValueError(f"invalid connection id {connection_id!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/media"):
        path += "/media"
    return urlunsplit((scheme, parts.netloc, f"{path}/{connection_id}", "", ""))


def asterisk_params(
    serializer: AsteriskSerializer | None = None, **overrides: Any
) -> WebsocketClientParams:
    """Transport parameters for dialing chan_websocket; ``overrides`` win.

    Audio both ways without WAV headers, the ``media`` subprotocol, no
    reconnection (closing the media socket hangs the call up, and a second
    connection to the same id is refused [WS-SRC]) and 20 ms output chunks.

    Args:
        serializer: The serializer (a default :class:`AsteriskSerializer` if None).
        **overrides: Any :class:`~pipecat_wsclient.WebsocketClientParams` field.
    """
    values: dict[str, Any] = dict(
        serializer=serializer or AsteriskSerializer(),
        audio_in_enabled=True,
        audio_out_enabled=True,
        add_wav_header=False,
        subprotocols=[MEDIA_SUBPROTOCOL],
        reconnect=None,
        audio_out_10ms_chunks=2,
    )
    values.update(overrides)
    return WebsocketClientParams(**values)
