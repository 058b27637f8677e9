#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a dial asks of ``websockets.connect``, derived from the params.

No I/O: the session calls :func:`handshake_headers` (the user's headers
provider, sync or async) and :func:`connect_kwargs` on every dial, so a
reconnect gets fresh headers and the same options.
"""

from __future__ import annotations

import inspect
import ssl as ssl_module
from typing import Any

from loguru import logger
from websockets.typing import Subprotocol

from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER


async def handshake_headers(params: WebsocketClientParams) -> dict[str, str]:
    """The handshake headers: ``additional_headers``, then the provider's on top.

    Args:
        params: The transport's params.

    Returns:
        A new dict; the provider is called (and awaited if async) each time.
    """
    headers = dict(params.additional_headers or {})
    provider = params.headers_provider
    if provider is not None:
        extra = provider()
        if inspect.isawaitable(extra):
            extra = await extra
        headers.update(extra)
    return headers


def connect_kwargs(
    params: WebsocketClientParams, *, secure: bool, safe_uri: str, name: str
) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.client.connect``.

    Args:
        params: The transport's params.
        secure: Whether the URI is ``wss://`` (TLS options apply only then).
        safe_uri: The redacted URI, for the warning when verification is off.
        name: Who dials, for that warning.

    Returns:
        Timeouts, keepalive, size limit, compression, user agent, proxy,
        subprotocols, TLS context and our redacting logger.
    """
    p = params
    kwargs: dict[str, Any] = {
        "open_timeout": p.open_timeout,
        "close_timeout": p.close_timeout,
        "ping_interval": p.ping_interval,
        "ping_timeout": p.ping_timeout,
        "max_size": p.max_message_size,
        "compression": p.compression,
        "user_agent_header": p.user_agent,
        "proxy": None if p.proxy is False else p.proxy,
        "logger": WEBSOCKETS_LOGGER,
    }
    if p.subprotocols:
        kwargs["subprotocols"] = [Subprotocol(s) for s in p.subprotocols]
    if secure and p.ssl is not None and p.ssl is not True:
        if p.ssl is False:
            logger.warning(f"{name}: TLS certificate verification is OFF for {safe_uri}")
            context = ssl_module.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
            kwargs["ssl"] = context
        else:
            kwargs["ssl"] = p.ssl
    return kwargs
