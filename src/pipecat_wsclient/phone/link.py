#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The page's socket, both ways, with the limits of :mod:`.limits` kept in one place.

:class:`PageLink` is the one place that sends to a page and the one that
closes its socket: messages go out in order from one task, never blocking
the call; bot audio beyond :data:`PAGE_AUDIO_SECS` for a page that does not
read is dropped (and counted), and text beyond
:data:`~.limits.PAGE_TEXT_BYTES` closes the socket (1008). :meth:`PageLink.messages`
reads the page: a text message over :data:`~.limits.PAGE_TEXT_MAX_CHARS`
closes the socket with 1009, more than :data:`~.limits.PAGE_TEXT_RATE` a
second (beyond a burst) with 1008.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from loguru import logger
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pipecat_wsclient.phone.limits import (
    PAGE_TEXT_BURST,
    PAGE_TEXT_BYTES,
    PAGE_TEXT_MAX_CHARS,
    PAGE_TEXT_RATE,
    RateLimit,
)

PAGE_AUDIO_SECS = 2.0
"""Bot audio waiting for a page that stopped reading, beyond which it is dropped."""

FLUSH_SECS = 5.0
"""How long the page has to take its last messages before its socket is closed."""

CLOSE_SECS = 1.0
"""How long a page has to answer our close before its connection is dropped."""


class PageLink:
    """Messages to one page, sent in order by one task; the page's messages, within limits.

    If the page stops reading, bot audio beyond :data:`PAGE_AUDIO_SECS` is
    dropped (and counted): the call goes on, the page hears a gap. Audio
    still queued when the link closes counts as not delivered too. Text is
    never dropped (the page's view would be wrong): a page that lets
    :data:`~.limits.PAGE_TEXT_BYTES` of it pile up is closed instead.

    Example::

        link = PageLink(websocket, 2 * rate)
        call = PhoneCall(options, post=link.post, keep=...)
        await call.run(link.messages())
        await link.close(FLUSH_SECS)
    """

    def __init__(self, websocket: ServerConnection, bytes_per_sec: int):
        """Start sending to the page.

        Args:
            websocket: The page's socket.
            bytes_per_sec: The call's PCM bytes per second (for the audio bound).
        """
        self._websocket = websocket
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._audio_bytes = 0
        self._text_bytes = 0
        self._audio_limit = int(PAGE_AUDIO_SECS * bytes_per_sec)
        self._pump = asyncio.create_task(self._send_all())
        self._closing: asyncio.Task | None = None
        self.dropped_bytes = 0
        """Bot audio the page was not sent (dropped, or left queued at the end)."""
        self.close_code: int | None = None
        """The code we closed the page's socket with for breaking a limit (None: it did not)."""

    def post(self, message: str | bytes) -> None:
        """Queue a message for the page; never blocks."""
        if self._closing is not None:
            if isinstance(message, bytes):
                self.dropped_bytes += len(message)
            return
        if isinstance(message, bytes):
            if self._audio_bytes + len(message) > self._audio_limit:
                if not self.dropped_bytes:
                    logger.warning("phone: the page is not reading; dropping the bot's audio")
                self.dropped_bytes += len(message)
                return
            self._audio_bytes += len(message)
        else:
            self._text_bytes += len(message)
            if self._text_bytes > PAGE_TEXT_BYTES:
                self.refuse(1008, "the page does not read its messages")
                return
        self._queue.put_nowait(message)

    def refuse(self, code: int, reason: str) -> None:
        """Close the page's socket for breaking a limit (once; the reason is logged once)."""
        if self._closing is not None:
            return
        logger.warning(f"phone: closing the page's socket ({code}): {reason}")
        self.close_code = code
        self._pump.cancel()
        self._closing = asyncio.create_task(self._websocket.close(code, reason))

    async def messages(self) -> AsyncIterator[str | bytes]:
        """The page's messages until it closes (normally or not), or breaks a limit."""
        rate = RateLimit(PAGE_TEXT_RATE, PAGE_TEXT_BURST)
        loop = asyncio.get_running_loop()
        try:
            async for message in self._websocket:
                if isinstance(message, str):
                    if len(message) > PAGE_TEXT_MAX_CHARS:
                        self.refuse(1009, f"a text message over {PAGE_TEXT_MAX_CHARS} characters")
                        return
                    if not rate.allow(loop.time()):
                        self.refuse(1008, "too many messages")
                        return
                yield message
        except ConnectionClosed:
            return

    async def _send_all(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._websocket.send(message)
            except ConnectionClosed:
                return  # the page is gone: what is left is counted at close()
            if isinstance(message, bytes):
                self._audio_bytes -= len(message)  # sent: no longer ours to count
            else:
                self._text_bytes -= len(message)
            self._queue.task_done()

    async def close(self, flush_secs: float) -> None:
        """Let the page take what is queued (``flush_secs`` at most), then close its socket.

        The close is bounded too: a page that does not answer it within
        :data:`CLOSE_SECS` has its connection dropped. Cancelled, it still
        stops sending.
        """
        try:
            if self._closing is None:
                drained = asyncio.create_task(self._queue.join())
                try:
                    await asyncio.wait(
                        [drained, self._pump],
                        timeout=flush_secs,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    drained.cancel()
        finally:
            self._pump.cancel()
            self.dropped_bytes += self._audio_bytes  # queued (or being sent), never delivered
            self._audio_bytes = 0
        await asyncio.gather(self._pump, return_exceptions=True)
        if self._closing is None:
            self._closing = asyncio.create_task(self._websocket.close())
        done, _ = await asyncio.wait([self._closing], timeout=CLOSE_SECS + 0.5)
        if not done:
            self._websocket.transport.abort()
            self._closing.cancel()
        await asyncio.gather(self._closing, return_exceptions=True)
