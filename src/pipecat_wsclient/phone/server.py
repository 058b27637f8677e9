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

What keeps the page, the calls and the files to the person who started it:

- a per-run token (``secrets.token_urlsafe``) in the page's address, needed
  for the page, ``/config.json``, ``/call`` and ``/files/`` (see
  :mod:`.http`: hosts, origins, and the headers on every response);
- a fresh run folder (mode 0700) inside ``--save`` for the files, written
  only as new files, never through a link (:mod:`pipecat_wsclient.files`),
  and served only from the list of what this run wrote, the very files;
- bounded buffers both ways (:mod:`.limits`, :mod:`.link`), and a stop that
  takes :data:`STOP_SECS` whatever the calls and pages are doing.

Example::

    async with PhoneServer(PhoneOptions("ws://localhost:8765/ws", "twilio")) as phone:
        print(f"Phone page: {phone.url}")
        await phone.serve_forever()
"""

from __future__ import annotations

import asyncio
import html
import json
import mimetypes
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlencode

from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from pipecat_wsclient.caller.plot import pyplot
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.caller.webhook import check_webhook, is_webhook
from pipecat_wsclient.errors import redact_uri
from pipecat_wsclient.files import FileId, RunFolder
from pipecat_wsclient.phone.call import MAX_CHUNK_SECS, Kept, PhoneCall, PhoneOptions
from pipecat_wsclient.phone.http import (
    PUBLIC_PATHS,
    body_response,
    refusal,
    secure,
    text_response,
)
from pipecat_wsclient.phone.link import CLOSE_SECS, FLUSH_SECS, PageLink
from pipecat_wsclient.websockets_log import WEBSOCKETS_LOGGER

STOP_SECS = 1.2
"""How long :meth:`PhoneServer.close` takes at most, calls in progress or not."""

STOP_FILES_SECS = 0.8
"""Of that, how long a call being stopped has to write its files."""

LAUNCHER = "open-phone.html"
"""The file in the run folder that sends a browser to the page (:meth:`PhoneServer.launcher`)."""


class PhoneServer:
    """Serves the phone page and makes a call for each page that dials.

    Parameters (of ``__init__``) are what to dial, where to listen and where
    each run's folder goes. ``results`` collects each call's
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
        """Check the options; nothing listens, nothing is written until :meth:`start`.

        Args:
            options: What each call dials and how.
            host: The address to listen on (keep it on loopback: the page
                streams the microphone).
            port: The port; 0 picks a free one.
            folder: Where this run's folder goes (``run-YYYYMMDD-HHMMSS-XXXXXXXX/``,
                with ``N/recording.wav`` and ``N/timeline.png`` in it); a
                temporary folder, removed at :meth:`close`, if None.
            on_call_end: Called with the call's number and result when it ends.

        Raises:
            ValueError: For an unknown protocol or a wrong ``--carrier``/``--param``,
                or a webhook the protocol cannot dial.
        """
        self._rate = options.build_serializer()[1]  # a wrong option fails now, not at a call
        if is_webhook(options.uri):
            check_webhook(options.uri, options.protocol, options.auth_token)
        self.options = options
        self._host, self._port = host, port
        self._parent = folder
        self._temporary: Path | None = None
        self._run: RunFolder | None = None
        self.token = secrets.token_urlsafe(32)
        """The run's secret: in the page's address, needed by every request but the scripts."""
        self._on_call_end = on_call_end
        self._server: Server | None = None
        self._count = 0
        self._calls: dict[int, PhoneCall] = {}
        self._files: dict[str, tuple[str, FileId]] = {}
        """What this run wrote: URL path -> (name in the run folder, which file)."""
        self.results: dict[int, CallResult] = {}
        self.undelivered: dict[int, int] = {}
        """Per call, bytes of the bot's audio the page was not sent (see ``PageLink``)."""
        self.mic_dropped_secs: dict[int, float] = {}
        """Per call, the page's audio dropped for coming faster than real time."""
        self._config = json.dumps(
            {
                "protocol": options.protocol,
                "uri": redact_uri(options.uri),
                "sample_rate": self._rate,
                "chunk_ms": 20,
            }
        ).encode()

    @property
    def base_url(self) -> str:
        """The server's address, ``http://127.0.0.1:PORT/`` (without the token)."""
        return f"http://{self._host}:{self.port}/"

    @property
    def url(self) -> str:
        """The page's address with the token: ``http://127.0.0.1:PORT/?token=...``."""
        return self.address()

    def address(self, path: str = "/", **query: object) -> str:
        """The address of ``path`` with the token (and ``query``): what a page would ask for."""
        return f"{self.base_url}{path.lstrip('/')}?{urlencode({'token': self.token, **query})}"

    @property
    def port(self) -> int:
        """The port listened on (the one picked, for port 0)."""
        if self._server is None:
            return self._port
        return self._server.sockets[0].getsockname()[1]

    @property
    def folder(self) -> Path:
        """This run's folder (made by :meth:`open_folder`)."""
        assert self._run is not None, "open_folder() or start() first"
        return self._run.path

    def open_folder(self) -> Path:
        """Create this run's folder (once); :meth:`start` does it if not done.

        Raises:
            OSError: If it cannot be created in the folder given
                (:class:`~pipecat_wsclient.files.UnsafePathError` if what is
                there is not safe to use).
        """
        if self._run is None:
            parent = self._parent
            if parent is None:
                parent = self._temporary = Path(tempfile.mkdtemp(prefix="pipecat-phone-"))
            self._run = RunFolder.create(parent)
        return self._run.path

    def launcher(self) -> Path:
        """A local page that sends the browser to :attr:`url`: open this, not the URL.

        A browser started with the URL would have the token on its command
        line, which every local user can read (``ps``); this file is the
        owner's only (0600, in the run folder) and removed at :meth:`close`.
        """
        assert self._run is not None, "start() first"
        url = html.escape(self.url)
        page = (
            '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
            f'<meta http-equiv="refresh" content="0;url={url}"><title>Browser phone</title>'
            f'<p><a href="{url}">Open the browser phone</a></p>\n'
        )
        self._run.remove(LAUNCHER)
        self._run.write_new(LAUNCHER, page.encode())
        return self._run.path / LAUNCHER

    async def start(self) -> None:
        """Create the run's folder and listen.

        Raises:
            OSError: If the folder cannot be made, or the address bound (in use, not local).
        """
        self.open_folder()
        # Matplotlib takes a second to import: done now, in the background, a
        # call's timeline is ready soon after it ends (and in time when stopping).
        threading.Thread(target=pyplot, name="phone-warm-up", daemon=True).start()
        self._server = await serve(
            self._handle_call,
            self._host,
            self._port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=int(2 * self._rate * MAX_CHUNK_SECS) + 1024,
            compression=None,
            close_timeout=CLOSE_SECS,
            # Its debug lines, with the token in the request target, redacted.
            logger=WEBSOCKETS_LOGGER,
        )

    async def close(self) -> None:
        """Stop listening, end the calls (:data:`STOP_SECS` at most), remove a temporary folder.

        Calls in progress are ended at once (nothing queued goes out); each
        writes its recording and timeline if that fits in :data:`STOP_FILES_SECS`.
        """
        if self._server is not None:
            for call in self._calls.values():
                call.stop(STOP_FILES_SECS)
            self._server.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._server.wait_closed()), STOP_SECS)
            except TimeoutError:
                logger.warning("phone: the calls did not end in time; dropping them")
                for connection in self._server.connections:
                    connection.transport.abort()
                for task in list(self._server.handler_tasks):
                    task.cancel()
                await asyncio.wait([asyncio.ensure_future(self._server.wait_closed())], timeout=0.3)
        if self._run is not None:
            self._run.remove(LAUNCHER)
            self._run.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)

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
        refused = refusal(request, hosts=self._hosts(), token=self.token)
        if refused is not None:
            return refused
        path = request.path.split("?", 1)[0]
        if path == "/call":
            return None  # the WebSocket handshake goes on
        if path == "/config.json":
            return body_response(200, self._config, "application/json")
        if path == "/" or path in PUBLIC_PATHS:
            name = "index.html" if path == "/" else path.lstrip("/")
            data = files("pipecat_wsclient.phone").joinpath("static", name).read_bytes()
            return body_response(200, data, mimetypes.guess_type(name)[0] or "text/plain")
        if path in self._files:
            return self._file(path)
        return text_response(404, "Not found")

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        return secure(response, self.port)

    def _file(self, path: str) -> Response:
        """A file this run wrote, if it is still the file written (never a link, never another)."""
        assert self._run is not None
        name, written = self._files[path]
        try:
            with self._run.open_written(name, written) as file:
                data = file.read()
        except OSError as e:  # gone, or replaced: by whom, the log says, not the page
            logger.warning(f"phone: not serving {path}: {e}")
            return text_response(404, "Not found")
        return body_response(200, data, mimetypes.guess_type(name)[0] or "application/octet-stream")

    def _keeper(self, number: int) -> Callable[[str, Path], Kept]:
        """Keeps call ``number``'s files in ``N/`` of the run folder, and lists them to serve."""
        assert self._run is not None
        run = self._run
        made: list[bool] = []

        def keep(name: str, staged: Path) -> Kept:
            if not made:
                run.make_folder(str(number))
                made.append(True)
            relative = f"{number}/{name}"
            url = f"/files/{relative}"
            self._files[url] = (relative, run.copy_new(relative, staged))
            return Kept(url, run.path / relative)

        return keep

    # -- a call ---------------------------------------------------------------

    async def _handle_call(self, websocket: ServerConnection) -> None:
        self._count += 1
        number = self._count
        link = PageLink(websocket, 2 * self._rate)
        try:
            call = PhoneCall(self.options, post=link.post, keep=self._keeper(number))
            self._calls[number] = call
            result = await call.run(link.messages())
            self.results[number] = result
            self.mic_dropped_secs[number] = call.page_audio_dropped_secs
            if call.page_audio_dropped_secs:
                logger.warning(
                    f"phone: call {number}: {call.page_audio_dropped_secs:.1f} s of the page's "
                    "audio dropped (it came faster than real time)"
                )
            if self._on_call_end is not None:
                self._on_call_end(number, result)
        except OSError as e:  # UnsafePathError among them: a file in the way is not written over
            logger.error(f"phone: call {number}: its files were not kept: {e}")
        finally:
            self._calls.pop(number, None)
            stopping = self._server is not None and not self._server.is_serving()
            await link.close(0 if stopping else FLUSH_SECS)
            self.undelivered[number] = link.dropped_bytes
            if link.dropped_bytes:
                logger.warning(f"phone: call {number}: {link.dropped_bytes} bytes not delivered")
