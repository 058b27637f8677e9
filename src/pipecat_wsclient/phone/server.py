#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The browser phone's local server: one page, its files, and a WebSocket per call.

One ``websockets`` server on 127.0.0.1 does it all: plain ``GET`` requests are
answered from ``process_request`` (the page and its scripts, shipped as
package data; ``/config.json``; each call's recording and timeline under
``/files/N/``), and a WebSocket at ``/call`` is one call
(:class:`~pipecat_wsclient.phone.call.PhoneCall`).

Only the page's own origin may open ``/call`` (another web site open in the
same browser could otherwise dial), and only requests for this address are
answered (no DNS rebinding).

Example::

    async with PhoneServer(PhoneOptions("ws://localhost:8765/ws", "twilio")) as phone:
        print(f"Phone page: {phone.url}")
        await phone.serve_forever()
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from pathlib import Path

from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.errors import redact_uri
from pipecat_wsclient.phone.call import MAX_CHUNK_SECS, PhoneCall, PhoneOptions

STATIC_FILES = ("index.html", "phone.css", "phone.js", "worklets.js")
"""The page and its scripts, served from the package."""

PAGE_AUDIO_SECS = 2.0
"""Bot audio waiting for a page that stopped reading, beyond which it is dropped."""

FLUSH_SECS = 5.0
"""How long the page has to take its last messages before its socket is closed."""

_FILE_PATH = re.compile(r"^/files/(\d+)/(recording\.wav|timeline\.png)$")


class _PageLink:
    """Messages to one page, sent in order by one task; never blocks the call.

    If the page stops reading, bot audio beyond :data:`PAGE_AUDIO_SECS` is
    dropped (and counted): the call goes on, the page hears a gap. Audio
    still queued when the link closes counts as not delivered too.
    """

    def __init__(self, websocket: ServerConnection, bytes_per_sec: int):
        self._websocket = websocket
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._audio_bytes = 0
        self._audio_limit = int(PAGE_AUDIO_SECS * bytes_per_sec)
        self._pump = asyncio.create_task(self._send_all())
        self.dropped_bytes = 0
        """Bot audio the page was not sent (dropped, or left queued at the end)."""

    def post(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            if self._audio_bytes + len(message) > self._audio_limit:
                if not self.dropped_bytes:
                    logger.warning("phone: the page is not reading; dropping the bot's audio")
                self.dropped_bytes += len(message)
                return
            self._audio_bytes += len(message)
        self._queue.put_nowait(message)

    async def _send_all(self) -> None:
        while True:
            message = await self._queue.get()
            await self._websocket.send(message)
            if isinstance(message, bytes):
                self._audio_bytes -= len(message)  # sent: no longer ours to count
            self._queue.task_done()

    async def close(self, timeout: float) -> None:
        """Let the page take what is queued (``timeout`` at most), then stop sending."""
        drained = asyncio.create_task(self._queue.join())
        await asyncio.wait([drained, self._pump], timeout=timeout)
        for task in (drained, self._pump):
            task.cancel()
        await asyncio.gather(drained, self._pump, return_exceptions=True)
        self.dropped_bytes += self._audio_bytes  # queued (or being sent), never delivered
        self._audio_bytes = 0


class PhoneServer:
    """Serves the phone page and makes a call for each page that dials.

    Parameters (of ``__init__``) are what to dial, where to listen and where
    each call's recording and timeline go. ``results`` collects each call's
    :class:`CallResult` as it ends; ``on_call_end`` is told too.
    """

    def __init__(
        self,
        options: PhoneOptions,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        folder: Path | None = None,
        on_call_end: Callable[[int, CallResult], None] | None = None,
    ):
        """Check the options; nothing listens until :meth:`start`.

        Args:
            options: What each call dials and how.
            host: The address to listen on (keep it on loopback: the page
                streams the microphone).
            port: The port; 0 picks a free one.
            folder: Where calls' files are kept (``N/recording.wav``,
                ``N/timeline.png``); a temporary folder, removed at :meth:`close`,
                if None.
            on_call_end: Called with the call's number and result when it ends.

        Raises:
            ValueError: For an unknown protocol or a wrong ``--carrier``/``--param``.
        """
        self._rate = options.build_serializer()[1]  # a wrong option fails now, not at a call
        self.options = options
        self._host, self._port = host, port
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="pipecat-phone-")) if folder is None else folder
        self._on_call_end = on_call_end
        self._server: Server | None = None
        self._count = 0
        self.results: dict[int, CallResult] = {}
        self.undelivered: dict[int, int] = {}
        """Per call, bytes of the bot's audio the page was not sent (see ``_PageLink``)."""
        self._config = json.dumps(
            {
                "protocol": options.protocol,
                "uri": redact_uri(options.uri),
                "sample_rate": self._rate,
                "chunk_ms": 20,
            }
        ).encode()

    @property
    def url(self) -> str:
        """The page's address, ``http://127.0.0.1:PORT/``."""
        return f"http://{self._host}:{self.port}/"

    @property
    def port(self) -> int:
        """The port listened on (the one picked, for port 0)."""
        if self._server is None:
            return self._port
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: If the address cannot be bound (in use, not local).
        """
        self._server = await serve(
            self._handle_call,
            self._host,
            self._port,
            process_request=self._process_request,
            max_size=int(2 * self._rate * MAX_CHUNK_SECS) + 1024,
            compression=None,
        )

    async def close(self) -> None:
        """Stop listening, end the calls, and remove a temporary folder."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    async def __aenter__(self) -> PhoneServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- HTTP -----------------------------------------------------------------

    def _hosts(self) -> set[str]:
        return {f"{self._host}:{self.port}", f"localhost:{self.port}", f"127.0.0.1:{self.port}"}

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Host", "") not in self._hosts():
            return _response(403, b"Forbidden: not this server's address", "text/plain")
        path = request.path.split("?", 1)[0]
        if path == "/call":
            origin = request.headers.get("Origin")
            if origin is not None and origin.removeprefix("http://") not in self._hosts():
                return _response(403, b"Forbidden: only the phone page may call", "text/plain")
            return None  # the WebSocket handshake goes on
        if path == "/config.json":
            return _response(200, self._config, "application/json")
        name = "index.html" if path == "/" else path.lstrip("/")
        if name in STATIC_FILES:
            data = files("pipecat_wsclient.phone").joinpath("static", name).read_bytes()
            return _response(200, data, mimetypes.guess_type(name)[0] or "text/plain")
        match = _FILE_PATH.match(path)
        if match is not None:
            file = self.folder / match[1] / match[2]
            if file.is_file():
                return _response(200, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "")
        return _response(404, b"Not found", "text/plain")

    # -- a call ---------------------------------------------------------------

    async def _handle_call(self, websocket: ServerConnection) -> None:
        self._count += 1
        number = self._count
        link = _PageLink(websocket, 2 * self._rate)
        try:
            call = PhoneCall(
                self.options,
                post=link.post,
                folder=self.folder / str(number),
                files_url=f"/files/{number}",
            )
            result = await call.run(_messages(websocket))
            self.results[number] = result
            if self._on_call_end is not None:
                self._on_call_end(number, result)
        finally:
            await link.close(FLUSH_SECS)
            self.undelivered[number] = link.dropped_bytes
            if link.dropped_bytes:
                logger.warning(f"phone: call {number}: {link.dropped_bytes} bytes not delivered")
            await websocket.close()


async def _messages(websocket: ServerConnection) -> AsyncIterator[str | bytes]:
    """The page's messages until it closes (normally or not)."""
    try:
        async for message in websocket:
            yield message
    except ConnectionClosed:
        return


def _response(status: int, body: bytes, content_type: str) -> Response:
    reasons = {200: "OK", 403: "Forbidden", 404: "Not Found"}
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            (
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
            ),
        ]
    )
    return Response(status, reasons.get(status, ""), headers, body)
