"""A fake Asterisk ``chan_websocket`` for tests: the server side of "incoming" mode.

Behaves as the channel driver does for a channel dialed as
``Dial(WebSocket/INCOMING/c(<format>)[f(json)])``, from

- [WS-DOC] https://docs.asterisk.org/Configuration/Channel-Drivers/WebSocket/
  ("Incoming Connections", "Media Transfer", "Max Message Size and Flow
  Control", "Control Commands and Events"), and
- [WS-SRC] asterisk/asterisk ``channels/chan_websocket.c`` (message formats,
  queue levels, ``process_binary_message``, ``dequeue_frame``,
  ``handle_command``, ``incoming_ws_http_callback``).

What it does, and on what it is based:

- Serves ``/media/<connection_id>`` only: another path or id gets 404, a
  second connection while one is open 409 [WS-SRC ``incoming_ws_http_callback``].
  The ``media`` subprotocol is chosen if offered (also accepted without).
- On connect sends ``MEDIA_START`` in the configured control format
  (``plain-text`` or ``json``, exactly as ``_create_event_MEDIA_START``
  writes them), then answers unless ``auto_answer=False`` (dial option ``n``).
- Every ptime: sends one frame of "caller" audio (``optimal_frame_size``
  bytes) while ``caller_audio`` lasts, and plays one frame out of its queue,
  as the channel's timer does. Once the caller's audio is used up it sends
  nothing, as a real Asterisk (23.4.1, tried) sends no media while the caller
  is silent; ``continuous_media=True`` keeps sending silence frames instead
  (the old, unrealistic behaviour).
- Bot media: a BINARY message longer than 65,500 bytes is a violation and
  closes the socket with 1009 [WS-DOC warning]; a message arriving while the
  queue holds ``queue_max`` (1000) frames is dropped whole [WS-SRC
  ``QUEUE_LENGTH_MAX``]; otherwise it is cut into ``optimal_frame_size``
  frames and an odd remainder is dropped (a violation) unless media
  buffering is on, in which case it waits for the next message [WS-DOC
  "Media Transfer"].
- Flow control: ``MEDIA_XOFF`` when queueing a frame makes the queue reach
  ``xoff_level`` (900), ``MEDIA_XON`` when, at a playout tick, the queue is
  below ``xon_level`` (800) [WS-DOC "about 900" / "below about 800"; WS-SRC
  ``QUEUE_LENGTH_XOFF_LEVEL``/``QUEUE_LENGTH_XON_LEVEL``, ``queue_frame_from_buffer``,
  ``dequeue_frame``].
- Commands (TEXT, case-sensitive, at most 128 bytes [WS-SRC
  ``MAX_TEXT_MESSAGE_LEN``], in the channel's format: JSON that does not
  parse gets an ``ERROR`` event; a JSON command on a plain-text channel is an
  unknown command): ``ANSWER``, ``HANGUP`` (recorded, then the socket is
  closed with 1000 after ``hangup_close_delay``), ``START_MEDIA_BUFFERING``,
  ``STOP_MEDIA_BUFFERING [id]`` (the leftover is padded to a frame, and
  ``MEDIA_BUFFERING_COMPLETED [id]`` is queued behind the media),
  ``FLUSH_MEDIA`` (queue, leftover and bulk mode dropped; the XOFF state
  stays, so XON follows at the next tick), ``PAUSE_MEDIA``/``CONTINUE_MEDIA``,
  ``GET_STATUS`` (``STATUS`` at once), ``REPORT_QUEUE_DRAINED``,
  ``MARK_MEDIA [id]`` (``MEDIA_MARK_PROCESSED`` queued behind the media).
- The app closing the socket is answered with 1001 (going away), as a real
  Asterisk does (``close_reply_code``); ``caller_hangup()`` closes with 1000
  and no event before it, as ``webchan_hangup`` does [WS-SRC].
- A JSON ``MEDIA_START`` carries the channel's variables: the driver's
  ``MEDIA_WEBSOCKET_CONNECTION_ID`` and ``MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE``
  [WS-SRC ``set_channel_variables``], some a dialplan typically sets or the
  channel inherits (caller id, account code...) and ``channel_variables``.
- ``send_dtmf()``, ``send_status()``, ``send_event()`` and ``caller_hangup()``
  act as Asterisk would on its own; ``send_message()`` sends anything as it is.

Everything is recorded for assertions (see the attributes of
:class:`FakeAsterisk`). Run it standalone for the example bot::

    .venv/bin/python tests/support/fake_asterisk.py --port 8088 --format slin16 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import struct
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipecat.audio.utils import audioop
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

MAX_MESSAGE_BYTES = 65500  # [WS-DOC "Max Message Size and Flow Control"]
MAX_TEXT_MESSAGE_LEN = 128  # [WS-SRC MAX_TEXT_MESSAGE_LEN]
QUEUE_LENGTH_MAX = 1000  # [WS-DOC "about 1000"; WS-SRC QUEUE_LENGTH_MAX]
QUEUE_LENGTH_XOFF_LEVEL = 900  # [WS-DOC "about 900"; WS-SRC]
QUEUE_LENGTH_XON_LEVEL = 800  # [WS-DOC "below about 800"; WS-SRC]

# format: (sample rate, bytes per sample)
FORMATS: dict[str, tuple[int, int]] = {
    "ulaw": (8000, 1),
    "alaw": (8000, 1),
    "slin": (8000, 2),
    "slin12": (12000, 2),
    "slin16": (16000, 2),
    "slin24": (24000, 2),
    "slin32": (32000, 2),
    "slin44": (44100, 2),
    "slin48": (48000, 2),
    "slin96": (96000, 2),
    "slin192": (192000, 2),
}


def encode(pcm: bytes, fmt: str) -> bytes:
    """16-bit PCM (at the format's rate) in the format's wire encoding."""
    if fmt == "ulaw":
        return audioop.lin2ulaw(pcm, 2)
    if fmt == "alaw":
        return audioop.lin2alaw(pcm, 2)
    return pcm


def decode(data: bytes, fmt: str) -> bytes:
    """The format's wire encoding to 16-bit PCM."""
    if fmt == "ulaw":
        return audioop.ulaw2lin(data, 2)
    if fmt == "alaw":
        return audioop.alaw2lin(data, 2)
    return data


def tone(seconds: float, rate: int, freq: float = 440.0) -> bytes:
    """A sine tone as 16-bit PCM."""
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(6000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )


@dataclass
class Command:
    """A command the app sent, as ``handle_command`` reads it.

    Attributes:
        t: ``time.monotonic()`` at arrival.
        name: The command (the whole text up to the first space, or ``"command"`` of JSON).
        arg: The plain-text rest after the first space, or the JSON
            ``correlation_id`` (the only argument handle_command reads).
        raw: The text as received.
        params: The JSON object without ``command`` (empty for plain text).
    """

    t: float
    name: str | None
    arg: str | None
    raw: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BinaryIn:
    """One BINARY message from the app.

    Attributes:
        t: Arrival time (``time.monotonic()``).
        size: Bytes in the message.
        accepted: Bytes queued (or kept as buffering leftover).
        dropped: Bytes dropped (queue full, odd remainder, too big).
        queue_length: Frames queued after it.
    """

    t: float
    size: int
    accepted: int
    dropped: int
    queue_length: int


@dataclass
class _Event:
    name: str
    params: dict[str, Any]


class FakeAsterisk:
    """One ``INCOMING`` WebSocket channel; use as ``async with FakeAsterisk(...) as fake``.

    Attributes:
        connection_id: The channel's ``MEDIA_WEBSOCKET_CONNECTION_ID``.
        port: The bound port (after entering).
        connections: Accepted WebSocket connections.
        rejected: HTTP statuses of refused handshakes (404, 409).
        subprotocols: Subprotocol chosen per connection.
        binary_in: Every BINARY message from the app.
        media_in: The app's media that was accepted, in arrival order.
        played: Frames played out to the "caller", in order.
        texts_in: ``(t, text)`` of every TEXT message from the app.
        wire_in: Every message from the app (BINARY and TEXT), in arrival order.
        commands: Every command, parsed as Asterisk does.
        events_out: ``(t, name, text)`` of every event sent.
        violations: Protocol rules the app broke, as sentences.
        dropped_bytes: App media dropped (queue full, odd remainder).
        max_queue_length: Longest the frame queue got.
        flushed_frames: Frames dropped by ``FLUSH_MEDIA``.
        answered / hung_up: Whether the channel was answered / hung up by ``HANGUP``.
        close_codes: Close code per finished connection.
    """

    def __init__(
        self,
        *,
        format: str = "ulaw",
        optimal_frame_size: int | None = None,
        ptime: int = 20,
        control_format: str = "plain-text",
        caller_audio: bytes = b"",
        continuous_media: bool = False,
        connection_id: str | None = None,
        auto_answer: bool = True,
        channel_variables: dict[str, str] | None = None,
        xoff_level: int = QUEUE_LENGTH_XOFF_LEVEL,
        xon_level: int = QUEUE_LENGTH_XON_LEVEL,
        queue_max: int = QUEUE_LENGTH_MAX,
        hangup_close_delay: float = 0.05,
        close_reply_code: int | None = 1001,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        """Configure the channel.

        Args:
            format: The channel's codec (``c(<format>)``), one of :data:`FORMATS`.
            optimal_frame_size: Bytes per ptime frame (from the codec by default).
            ptime: Packetization in ms.
            control_format: ``"plain-text"`` (Asterisk's default) or ``"json"``.
            caller_audio: The caller's audio, already in ``format``.
            continuous_media: Keep sending silence frames after ``caller_audio``
                (a real Asterisk sends nothing while the caller is silent).
            connection_id: The id in the URI (a random UUID by default).
            auto_answer: Answer on connect (False: the dial string had ``n``).
            channel_variables: Reported in a JSON ``MEDIA_START``.
            xoff_level: Queue length that triggers ``MEDIA_XOFF``.
            xon_level: ``MEDIA_XON`` once the queue is below this.
            queue_max: Messages arriving with this many frames queued are dropped.
            hangup_close_delay: Seconds between ``HANGUP`` and closing the socket.
            close_reply_code: The code our close is answered with (None: echo ours).
            host: Address to bind.
            port: Port to bind (0: any free port).
        """
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}")
        if control_format not in ("plain-text", "json"):
            raise ValueError(f"unknown control format {control_format!r}")
        rate, width = FORMATS[format]
        self.format = format
        self.sample_rate = rate
        self.sample_width = width
        self.ptime = ptime
        self.optimal_frame_size = optimal_frame_size or rate * ptime // 1000 * width
        self.control_format = control_format
        self.caller_audio = caller_audio
        self.continuous_media = continuous_media
        self.connection_id = connection_id or str(uuid.uuid4())
        self.auto_answer = auto_answer
        self.channel_variables = dict(channel_variables or {})
        self.xoff_level = xoff_level
        self.xon_level = xon_level
        self.queue_max = queue_max
        self.hangup_close_delay = hangup_close_delay
        self.close_reply_code = close_reply_code
        self.host = host
        self.port = port
        self.channel_id = f"{int(time.time())}.1"
        self.channel = f"WebSocket/INCOMING/0x{id(self):x}"

        self.connections = 0
        self.rejected: list[int] = []
        self.subprotocols: list[str | None] = []
        self.binary_in: list[BinaryIn] = []
        self.media_in = bytearray()
        self.played = bytearray()
        self.texts_in: list[tuple[float, str]] = []
        self.wire_in: list[bytes | str] = []
        self.commands: list[Command] = []
        self.events_out: list[tuple[float, str, str]] = []
        self.violations: list[str] = []
        self.dropped_bytes = 0
        self.max_queue_length = 0
        self.flushed_frames = 0
        self.answered = False
        self.hung_up = False
        self.close_codes: list[int | None] = []
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

        self._server: Server | None = None
        self._ws: ServerConnection | None = None
        self._tasks: set[asyncio.Task] = set()
        self._reset_channel()

    # -- recording helpers ------------------------------------------------------

    @property
    def uri(self) -> str:
        """``ws://host:port/media/<connection_id>``."""
        return f"ws://{self.host}:{self.port}/media/{self.connection_id}"

    @property
    def queue_length(self) -> int:
        """Frames queued for playout right now."""
        return self._queue_length

    def event_times(self, name: str) -> list[float]:
        """When each event ``name`` was sent."""
        return [t for t, n, _ in self.events_out if n == name]

    def command_names(self) -> list[str | None]:
        """The commands received, in order."""
        return [c.name for c in self.commands]

    def commands_named(self, name: str) -> list[Command]:
        """The commands ``name`` received."""
        return [c for c in self.commands if c.name == name]

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> FakeAsterisk:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            compression=None,
            ping_interval=None,
            max_size=None,  # We check the size ourselves, as Asterisk does.
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # The /media handler looks the id up verbatim; 404 if unknown, 409 if a
        # socket is already connected for it [WS-SRC incoming_ws_http_callback].
        prefix = "/media/"
        if not request.path.startswith(prefix) or request.path[len(prefix) :] != self.connection_id:
            self.rejected.append(404)
            return connection.respond(404, "WebSocket instance not found\n")
        if self._ws is not None:
            self.rejected.append(409)
            return connection.respond(
                409, "Another websocket connection exists for this connection id\n"
            )
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return Subprotocol("media") if "media" in subprotocols else None

    def _reset_channel(self) -> None:
        self._queue: deque[bytes | _Event] = deque()
        self._queue_length = 0
        self._queue_full = False
        self._bulk = False
        self._leftover = bytearray()
        self._paused = False
        self._report_drained = False
        self._caller_pos = 0

    def _answer_close_with(self, ws: ServerConnection, code: int) -> None:
        # websockets echoes the peer's close code; Asterisk answers with 1001.
        protocol = ws.protocol
        send_frame = protocol.send_frame

        def sending(frame: Frame) -> None:
            if frame.opcode is Opcode.CLOSE and protocol.close_rcvd and not protocol.close_sent:
                frame = Frame(Opcode.CLOSE, Close(code, "").serialize())
            send_frame(frame)

        protocol.send_frame = sending  # type: ignore[method-assign]

    async def _handler(self, ws: ServerConnection) -> None:
        if self.close_reply_code is not None:
            self._answer_close_with(ws, self.close_reply_code)
        self._ws = ws
        self.connections += 1
        self.subprotocols.append(ws.subprotocol)
        self._reset_channel()
        self.connected.set()
        self.closed.clear()
        clock: asyncio.Task | None = None
        try:
            await self._send_event("MEDIA_START")
            if self.auto_answer:
                self.answered = True
            clock = asyncio.create_task(self._clock(ws))
            async for message in ws:
                self.wire_in.append(message)
                if isinstance(message, bytes):
                    await self._on_binary(ws, message)
                else:
                    await self._on_text(ws, message)
        except ConnectionClosed:
            pass
        finally:
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
            await ws.wait_closed()
            self.close_codes.append(ws.close_code)
            self._ws = None
            self.closed.set()

    # -- the channel's timer -------------------------------------------------------

    async def _clock(self, ws: ServerConnection) -> None:
        """Every ptime: one frame to the app, one frame played out of the queue."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick = 0
        silence = encode(b"\x00" * (self.optimal_frame_size // self.sample_width * 2), self.format)
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * self.ptime / 1000 - loop.time()))
            if self.answered:
                await self._send_caller_frame(ws, silence)
            await self._dequeue()

    async def _send_caller_frame(self, ws: ServerConnection, silence: bytes) -> None:
        size = self.optimal_frame_size
        if self._caller_pos < len(self.caller_audio):
            frame = self.caller_audio[self._caller_pos : self._caller_pos + size]
            self._caller_pos += size
            frame += silence[len(frame) :]
        elif self.continuous_media:
            frame = silence
        else:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)

    async def _dequeue(self) -> None:
        # As dequeue_frame [WS-SRC]: nothing while paused; XON first; events
        # queued by STOP_MEDIA_BUFFERING/MARK_MEDIA go out when they reach the
        # front and do not use up the media slot.
        if self._paused:
            return
        if self._queue_full and self._queue_length < self.xon_level:
            self._queue_full = False
            await self._send_event("MEDIA_XON")
        if not self._queue:
            if self._report_drained:
                self._report_drained = False
                await self._send_event("QUEUE_DRAINED")
            return
        while self._queue and isinstance(self._queue[0], _Event):
            event = self._queue.popleft()
            assert isinstance(event, _Event)
            await self._send_event(event.name, **event.params)
        if not self._queue:
            return
        frame = self._queue.popleft()
        assert isinstance(frame, bytes)
        self._queue_length -= 1
        self.played.extend(frame)

    # -- media from the app ----------------------------------------------------------

    async def _queue_frame(self, frame: bytes) -> None:
        self._queue.append(frame)
        self._queue_length += 1
        self.max_queue_length = max(self.max_queue_length, self._queue_length)
        if not self._queue_full and self._queue_length >= self.xoff_level:
            self._queue_full = True
            await self._send_event("MEDIA_XOFF")

    async def _on_binary(self, ws: ServerConnection, message: bytes) -> None:
        now = time.monotonic()
        size = len(message)
        if size > MAX_MESSAGE_BYTES:
            self.violations.append(f"BINARY message of {size} bytes > {MAX_MESSAGE_BYTES}")
            self.dropped_bytes += size
            self.binary_in.append(BinaryIn(now, size, 0, size, self._queue_length))
            await ws.close(1009, "message too big")
            return
        if self._queue_length >= self.queue_max:
            self.violations.append(
                f"BINARY message of {size} bytes while {self._queue_length} frames are queued"
            )
            self.dropped_bytes += size
            self.binary_in.append(BinaryIn(now, size, 0, size, self._queue_length))
            return
        frame_size = self.optimal_frame_size
        data = message
        accepted = 0
        if self._bulk and self._leftover:
            take = data[: frame_size - len(self._leftover)]
            self._leftover.extend(take)
            accepted += len(take)
            data = data[len(take) :]
            if len(self._leftover) < frame_size:
                self.media_in.extend(take)
                self.binary_in.append(BinaryIn(now, size, accepted, 0, self._queue_length))
                return
            await self._queue_frame(bytes(self._leftover))
            self._leftover.clear()
        if not self._bulk:
            self._leftover.clear()
        whole = len(data) // frame_size * frame_size
        for i in range(0, whole, frame_size):
            await self._queue_frame(data[i : i + frame_size])
        accepted += whole
        rest = data[whole:]
        dropped = 0
        if rest:
            if self._bulk:
                self._leftover.extend(rest)
                accepted += len(rest)
            else:
                dropped = len(rest)
                self.dropped_bytes += dropped
                self.violations.append(
                    f"BINARY message of {size} bytes is not a multiple of {frame_size}: "
                    f"{dropped} bytes dropped"
                )
        self.media_in.extend(message[: size - dropped])
        self.binary_in.append(BinaryIn(now, size, accepted, dropped, self._queue_length))

    # -- commands ----------------------------------------------------------------------

    async def _on_text(self, ws: ServerConnection, text: str) -> None:
        now = time.monotonic()
        self.texts_in.append((now, text))
        if len(text.encode()) > MAX_TEXT_MESSAGE_LEN:
            self.violations.append(f"TEXT message of {len(text.encode())} bytes ignored: {text!r}")
            return
        text = text.strip()
        params: dict[str, Any] = {}
        if self.control_format == "json":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                self.violations.append(f"unparseable JSON command {text!r}")
                await self._send_event("ERROR", error_text="Unable to parse JSON command")
                return
            name = obj.get("command") if isinstance(obj, dict) else None
            if isinstance(obj, dict):
                params = {k: v for k, v in obj.items() if k != "command"}
            arg = params.get("correlation_id")
        else:
            name, _, rest = text.partition(" ")
            arg = rest or None
        command = Command(now, name if isinstance(name, str) else None, arg, text, params)
        self.commands.append(command)
        await self._run_command(ws, command)

    async def _run_command(self, ws: ServerConnection, command: Command) -> None:
        name = command.name
        if name == "ANSWER":
            self.answered = True
        elif name == "HANGUP":
            self.hung_up = True
            self._tasks.add(asyncio.create_task(self._close_after_hangup(ws)))
        elif name == "START_MEDIA_BUFFERING":
            self._bulk = True
        elif name == "STOP_MEDIA_BUFFERING":
            self._bulk = False
            if self._leftover:
                # Padded with silence to a whole frame at playout [WS-DOC].
                silence = encode(b"\x00" * self.optimal_frame_size * 2, self.format)
                frame = (
                    bytes(self._leftover) + silence[: self.optimal_frame_size - len(self._leftover)]
                )
                await self._queue_frame(frame)
                self._leftover.clear()
            self._queue.append(_Event("MEDIA_BUFFERING_COMPLETED", {"correlation_id": command.arg}))
        elif name == "FLUSH_MEDIA":
            self.flushed_frames += self._queue_length
            self._queue.clear()
            self._queue_length = 0
            self._bulk = False
            self._leftover.clear()
        elif name == "PAUSE_MEDIA":
            self._paused = True
        elif name == "CONTINUE_MEDIA":
            self._paused = False
        elif name == "GET_STATUS":
            await self.send_status()
        elif name == "REPORT_QUEUE_DRAINED":
            self._report_drained = True
        elif name == "MARK_MEDIA":
            self._queue.append(_Event("MEDIA_MARK_PROCESSED", {"correlation_id": command.arg}))
        else:
            self.violations.append(f"unknown command {command.raw!r}")

    async def _close_after_hangup(self, ws: ServerConnection) -> None:
        # HANGUP hangs the channel up, and hanging up closes the socket with
        # 1000 [WS-DOC "HANGUP"; WS-SRC webchan_hangup].
        await asyncio.sleep(self.hangup_close_delay)
        await ws.close(1000)

    # -- events ------------------------------------------------------------------------

    def format_event(self, name: str, **params: Any) -> str:
        """An event as chan_websocket writes it in the channel's format [WS-SRC _create_event_*]."""
        cid = self.channel_id
        if self.control_format == "json":
            obj: dict[str, Any] = {"event": name}
            if name == "MEDIA_START":
                obj.update(
                    connection_id=self.connection_id,
                    channel=self.channel,
                    channel_id=cid,
                    format=self.format,
                    optimal_frame_size=self.optimal_frame_size,
                    ptime=self.ptime,
                    channel_variables={
                        "MEDIA_WEBSOCKET_CONNECTION_ID": self.connection_id,
                        "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": str(self.optimal_frame_size),
                        "CALLERID_NUM": "+15550100001",
                        "CALLERID_NAME": "Test Caller",
                        "DIALEDPEERNUMBER": f"INCOMING/c({self.format})",
                        "ACCOUNTCODE": "",
                        "CDR_PROP_ID": "pipecat:test, with spaces",
                        **self.channel_variables,
                    },
                )
            elif name == "MEDIA_BUFFERING_COMPLETED":
                obj.update(channel_id=cid, correlation_id=params.get("correlation_id") or "")
            else:
                obj.update(channel_id=cid, **params)
            return json.dumps(obj, separators=(",", ":"))
        if name == "MEDIA_START":
            return (
                f"MEDIA_START connection_id:{self.connection_id} channel:{self.channel} "
                f"channel_id:{cid} format:{self.format} "
                f"optimal_frame_size:{self.optimal_frame_size} ptime:{self.ptime}"
            )
        if name in ("MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED"):
            correlation_id = params.get("correlation_id")
            return f"{name} {correlation_id}" if correlation_id else name
        if name == "DTMF_END":
            return f"DTMF_END digit:{params['digit']} channel_id:{cid}"
        if name in ("STATUS", "ERROR"):
            fields = " ".join(f"{k}:{_plain(v)}" for k, v in params.items())
            return f"{name} channel_id:{cid} {fields}"
        return " ".join([name, *(f"{k}:{_plain(v)}" for k, v in params.items())])

    async def send_event(self, name: str, **params: Any) -> None:
        """Send an event now, as the channel driver would."""
        await self._send_event(name, **params)

    async def _send_event(self, name: str, **params: Any) -> None:
        text = self.format_event(name, **params)
        self.events_out.append((time.monotonic(), name, text))
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(text)

    async def send_message(self, message: str | bytes) -> None:
        """Send any TEXT or BINARY message as it is (junk an app must survive)."""
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(message)

    async def send_dtmf(self, digit: str) -> None:
        """The caller pressed ``digit`` (``DTMF_END``)."""
        await self._send_event("DTMF_END", digit=digit)

    async def send_status(self) -> None:
        """``STATUS``, as the answer to ``GET_STATUS``."""
        await self._send_event(
            "STATUS",
            queue_length=self._queue_length,
            xon_level=self.xon_level,
            xoff_level=self.xoff_level,
            queue_full=self._queue_full,
            bulk_media=self._bulk,
            media_paused=self._paused,
        )

    async def caller_hangup(self) -> None:
        """The caller hung up: the channel closes the socket."""
        if self._ws is not None:
            await self._ws.close(1000)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _main(args: argparse.Namespace) -> None:
    rate, _ = FORMATS[args.format]
    caller = encode(tone(args.caller_secs, rate), args.format) if args.caller_secs else b""
    async with FakeAsterisk(
        format=args.format,
        control_format="json" if args.json else "plain-text",
        caller_audio=caller,
        connection_id=args.connection_id,
        host=args.host,
        port=args.port,
    ) as fake:
        print(f"fake chan_websocket listening: {fake.uri}", flush=True)
        while True:
            await fake.connected.wait()
            await fake.closed.wait()
            played = len(fake.played) / (fake.sample_rate * fake.sample_width)
            print(
                f"call ended (close code {fake.close_codes[-1]}): "
                f"commands {fake.command_names()}, {played:.2f}s of bot audio played, "
                f"violations {fake.violations or 'none'}",
                flush=True,
            )
            fake.connected.clear()
            fake.played.clear()
            fake.commands.clear()
            fake.violations.clear()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A fake Asterisk chan_websocket (incoming mode).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--format", default="slin16", choices=sorted(FORMATS))
    parser.add_argument("--json", action="store_true", help="JSON control messages")
    parser.add_argument("--connection-id", default="pipecat-example")
    parser.add_argument("--caller-secs", type=float, default=2.0, help="seconds of caller tone")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))
