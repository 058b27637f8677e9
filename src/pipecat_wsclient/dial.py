#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Open one connection: the handshake headers, ``websockets.connect``, the session's hello.

:class:`Dialer` is the session's way to the network for opening, and every
way it can fail becomes a :class:`~pipecat_wsclient.errors.ConnectionFailure`
naming the redacted URI and the cause: the OS and ``websockets`` errors
(:func:`~pipecat_wsclient.failures.failure_from_exception`), and the user's
code in the dial path (``headers_provider``, ``session_start_messages``),
which fails as ``CALLBACK`` with the socket closed (1011). With
``session.py``, the only module that talks to ``websockets``.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from pipecat_wsclient.errors import ConnectionFailure, FailureKind
from pipecat_wsclient.failures import CLOSE_INTERNAL_ERROR, failure_from_exception
from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER


@dataclass
class Dialer:
    """Opens connections to one URI with one set of params.

    Parameters:
        uri: The URI, with its credentials.
        params: The transport's params.
        secure: Whether the URI is ``wss://``.
        safe_uri: The redacted URI, for messages.
        name: Who dials, for log lines.
        stats: Counters to update (failed dials, hello messages sent).
        on_session_start: Returns the hello to send first, if any.
    """

    uri: str
    params: WebsocketClientParams
    secure: bool
    safe_uri: str
    name: str
    stats: WebsocketClientStats
    on_session_start: Callable[[], Awaitable[list[str | bytes]]] | None = None

    async def open(self) -> ClientConnection:
        """Dial, and send the session's hello.

        Returns:
            The open connection, its hello sent.

        Raises:
            ConnectionFailure: Why it could not be opened; nothing is left open.
        """
        try:
            headers = await handshake_headers(self.params)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats.connect_failures += 1
            raise self._callback_failure("headers_provider", e) from e
        try:
            options = connect_kwargs(
                self.params, secure=self.secure, safe_uri=self.safe_uri, name=self.name
            )
            websocket = await connect(self.uri, additional_headers=headers, **options)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats.connect_failures += 1
            raise failure_from_exception(e, self.safe_uri, self.params) from e
        try:
            await self._start_session(websocket)
        except asyncio.CancelledError:
            websocket.transport.abort()
            raise
        except ConnectionFailure:
            self.stats.connect_failures += 1
            await self._discard(websocket)
            raise
        return websocket

    async def _start_session(self, websocket: ClientConnection) -> None:
        """Send the protocol's hello (``on_session_start``) before anything else.

        Raises:
            ConnectionFailure: ``CALLBACK`` if the user's code raised or gave
                something that is not a message; the connection's failure if
                it closed or stopped reading meanwhile.
        """
        if self.on_session_start is None:
            return
        try:
            messages = await self.on_session_start()
            for message in messages:
                if not isinstance(message, str | bytes):
                    raise TypeError(
                        f"an item of type {type(message).__name__} (expected str or bytes)"
                    )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise self._callback_failure("session_start_messages", e) from e
        try:
            async with asyncio.timeout(self.params.write_timeout):
                for message in messages:
                    await websocket.send(message)
                    self.stats.messages_out += 1
                    self.stats.bytes_out += len(message)
        except TimeoutError as e:
            raise ConnectionFailure(
                FailureKind.WRITE_TIMEOUT,
                self.safe_uri,
                f"the session start messages were not taken within "
                f"write_timeout={self.params.write_timeout}s (the peer is not reading)",
            ) from e
        except ConnectionClosed as e:
            raise failure_from_exception(e, self.safe_uri, self.params) from e

    def _callback_failure(self, name: str, error: Exception) -> ConnectionFailure:
        detail = str(error)
        return ConnectionFailure(
            FailureKind.CALLBACK,
            self.safe_uri,
            f"{name} failed: {type(error).__name__}" + (f": {detail}" if detail else ""),
        )

    async def _discard(self, websocket: ClientConnection) -> None:
        """Close a connection that will not be used (its session could not start)."""
        try:
            async with asyncio.timeout(self.params.close_timeout):
                await websocket.close(CLOSE_INTERNAL_ERROR, "session start failed")
        except Exception as e:  # it may be broken already: the failure says why
            logger.debug(f"{self.name}: error while closing: {e!r}")
        finally:
            websocket.transport.abort()


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
