#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Asterisk's WebSocket channel driver (``chan_websocket``), with the bot as the client.

``chan_websocket`` (Asterisk 20.16+/21.11+/22.6+/23.0+) carries a call's
media over a WebSocket: BINARY messages are raw media in the channel's
codec, TEXT messages are control commands (app to Asterisk) and events
(Asterisk to app). It can dial your app ("outgoing": Asterisk is the
client, configured in ``websocket_client.conf``) or wait for your app to
dial it ("incoming": Asterisk is the server). :class:`AsteriskSerializer`
makes our client transport speak the protocol in *incoming* mode: the bot
dials ``ws(s)://<asterisk-http-server>/media/<connection_id>``.

Sources (cited as [WS-DOC] and [WS-SRC] below):

- [WS-DOC] "WebSocket" channel driver page,
  https://docs.asterisk.org/Configuration/Channel-Drivers/WebSocket/
  (asterisk/documentation ``docs/Configuration/Channel-Drivers/WebSocket.md``):
  sections "Connection Types", "Media Transfer", "Max Message Size and Flow
  Control", "Control Commands and Events", "Creating the Channel".
- [WS-CONF] chan_websocket.conf reference (``control_message_format``),
  https://docs.asterisk.org/Asterisk_22_Documentation/API_Documentation/Module_Configuration/chan_websocket
- [WS-SRC] asterisk/asterisk ``channels/chan_websocket.c`` (the release
  that added JSON control messages): exact message formats, the queue
  levels, the 128-byte limit on TEXT commands, the ``/media`` HTTP handler.
- [WS-EX] asterisk/asterisk-websocket-examples ``ast_media_websocket.py``
  (the official Python client connects to ``/media/<id>`` offering the
  ``media`` subprotocol).

Connection recipe (incoming mode)
---------------------------------

1. Asterisk's built-in HTTP server must be on (``http.conf``:
   ``enabled=yes``, ``bindport=8088``; ``tlsenable=yes`` and
   ``tlsbindaddr=0.0.0.0:8089`` for ``wss://``). ``chan_websocket`` serves
   incoming media connections under the ``media`` URI of that server
   [WS-DOC "Incoming Connections"; WS-SRC ``http_uri.uri = "media"``].
   ``websocket_client.conf`` is *not* needed: it only configures outgoing
   connections [WS-DOC "Configuration"].
2. Create the channel with the special connection id ``INCOMING``; pick the
   codec with ``c()`` and the control format with ``f()`` [WS-DOC "Creating
   the Channel"]::

       ; dialplan
       exten => 100,1,Dial(WebSocket/INCOMING/c(slin16)f(json))

       ; or ARI
       POST /ari/channels/externalMedia?transport=websocket&encapsulation=none
            &external_host=INCOMING&connection_type=server&format=slin16
            &transport_data=f(json)

3. Asterisk sets the channel variable ``MEDIA_WEBSOCKET_CONNECTION_ID`` on
   the new WebSocket channel to an ephemeral UUID [WS-DOC "Incoming
   Connections"]. Hand it to the bot (e.g. read it with ARI
   ``GET /channels/{id}/variable?variable=MEDIA_WEBSOCKET_CONNECTION_ID``,
   or from a ``Dial`` pre-dial handler ``b()``, which runs on the new
   channel) and dial::

       uri = asterisk_media_uri("ws://asterisk.example.com:8088", connection_id)
       transport = WebsocketClientTransport(uri, asterisk_params(AsteriskSerializer()))

4. On connect Asterisk sends ``MEDIA_START`` (format, optimal frame size,
   ptime) and, unless the dial string has ``n``, answers the channel. The
   serializer then streams the caller's audio into the pipeline and the
   bot's audio to the caller.

Closing the media WebSocket hangs the channel up [WS-SRC
``read_thread_handler``: "HANGUP by websocket close/error"], and a second
connection to the same id is refused with 409, so reconnecting cannot
resume a call: :func:`asterisk_params` turns reconnection off. The
``/media`` handler checks no credentials [WS-SRC
``incoming_ws_http_callback``]: the unguessable UUID is the only secret,
so prefer ``wss://`` across untrusted networks.

What the serializer does
------------------------

- Parses ``MEDIA_START`` in either control format and takes the codec
  (``ulaw``, ``alaw``, ``slin``..``slin192``), ``optimal_frame_size`` and
  ``ptime`` from it.
- Caller audio (BINARY) becomes ``InputAudioRawFrame`` at the pipeline's
  input rate (decoded, then resampled with Pipecat's stream resampler).
- Bot audio is encoded and sent as BINARY messages that are always whole
  multiples of ``optimal_frame_size`` (an odd remainder would be dropped by
  Asterisk [WS-DOC "Media Transfer"]) and never larger than 65,500 bytes
  (a bigger message closes the WebSocket and hangs up [WS-DOC "Max Message
  Size and Flow Control"]). The remainder waits for the next chunk, or is
  padded with silence once the bot has been quiet for ``tail_flush_secs``.
- Flow control: on ``MEDIA_XOFF`` nothing more is sent; audio is held, in
  order, and released after ``MEDIA_XON``. The serializer also keeps an
  estimate of Asterisk's queue (frames sent minus one frame played per
  ptime) and never lets it exceed ``max_queued_frames`` (default 950, half
  way between the XOFF level, 900, and the ~1000-frame queue limit beyond
  which Asterisk drops whole messages [WS-SRC ``process_binary_message``]),
  so audio already in flight when Asterisk sends XOFF still fits. After the
  first XOFF it keeps the queue below ``resume_queued_frames`` (850, between
  XON and XOFF), so it does not bounce straight back into XOFF.
- ``InterruptionFrame`` sends ``FLUSH_MEDIA`` (held audio is dropped too);
  ``EndFrame`` sends what is still held, waits (at most ``end_timeout_secs``)
  for Asterisk to play its queue out, then sends ``HANGUP``;
  ``CancelFrame`` hangs up at once.
- ``DTMF_END`` becomes ``InputDTMFFrame``. ``STATUS``,
  ``MEDIA_BUFFERING_COMPLETED``, ``MEDIA_MARK_PROCESSED``,
  ``QUEUE_DRAINED`` and ``ERROR`` are logged and counted in
  :attr:`AsteriskSerializer.stats` and given to ``on_event``.
- With ``media_buffering=True`` each stretch of bot audio is wrapped in
  ``START_MEDIA_BUFFERING`` / ``STOP_MEDIA_BUFFERING <id>``; Asterisk then
  reports ``MEDIA_BUFFERING_COMPLETED <id>`` when it has played it out.
- Other commands (``GET_STATUS``, ``MARK_MEDIA``, ``PAUSE_MEDIA``...) via
  :meth:`AsteriskSerializer.send_command`, or as an
  ``OutputTransportMessageFrame`` with a ``"command"`` key (sent in order
  with the audio).

Outbound DTMF is not part of the protocol (Asterisk only reports the
caller's digits), so ``supports_native_dtmf`` is False and Pipecat plays
``OutputDTMFFrame`` as tones in the audio.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.protocols.carrier import (
    alaw_to_pcm,
    mulaw_to_pcm,
    pcm_to_alaw,
    pcm_to_mulaw,
)

ControlFormat = Literal["plain-text", "json"]
"""The two control message formats [WS-DOC "Control Commands and Events"; WS-CONF]."""

MAX_MESSAGE_BYTES = 65500
"""Largest WebSocket message Asterisk accepts; bigger ones close the socket and
hang up [WS-DOC "Max Message Size and Flow Control"]. (res_http_websocket
closes with 1009 when header + payload exceed 65535 bytes.)"""

MAX_COMMAND_BYTES = 128
"""TEXT commands longer than this are ignored [WS-SRC ``MAX_TEXT_MESSAGE_LEN``
is ``MIN(128, AST_WEBSOCKET_MAX_RX_PAYLOAD_SIZE - 1)``]."""

QUEUE_LENGTH_MAX = 1000
"""Frames Asterisk queues at most; a BINARY message arriving while the queue is
this long is ignored whole [WS-DOC "about 1000"; WS-SRC ``QUEUE_LENGTH_MAX``]."""

QUEUE_XOFF_LEVEL = 900
"""Queue length at which Asterisk sends ``MEDIA_XOFF`` [WS-DOC "about 900";
WS-SRC ``QUEUE_LENGTH_XOFF_LEVEL``; also reported as ``xoff_level`` in ``STATUS``]."""

QUEUE_XON_LEVEL = 800
"""Asterisk sends ``MEDIA_XON`` once the queue drops below this [WS-DOC "below
about 800"; WS-SRC ``QUEUE_LENGTH_XON_LEVEL``; ``xon_level`` in ``STATUS``]."""

DEFAULT_MAX_QUEUED_FRAMES = (QUEUE_XOFF_LEVEL + QUEUE_LENGTH_MAX) // 2
"""950: what we let Asterisk's queue reach (by our estimate) before holding audio."""

DEFAULT_RESUME_QUEUED_FRAMES = (QUEUE_XON_LEVEL + QUEUE_XOFF_LEVEL) // 2
"""850: the bound after the first ``MEDIA_XOFF``, between the XON and XOFF levels."""

MEDIA_SUBPROTOCOL = "media"
"""The subprotocol chan_websocket registers for incoming connections [WS-SRC
``ast_websocket_sub_protocol_alloc("media")``] and the official client offers [WS-EX]."""

COMMANDS = frozenset(
    {
        "ANSWER",
        "HANGUP",
        "START_MEDIA_BUFFERING",
        "STOP_MEDIA_BUFFERING",
        "FLUSH_MEDIA",
        "PAUSE_MEDIA",
        "CONTINUE_MEDIA",
        "MARK_MEDIA",
        "GET_STATUS",
        "REPORT_QUEUE_DRAINED",
        "SET_MEDIA_DIRECTION",
    }
)
"""Commands an app may send [WS-DOC "Commands"]. All are case-sensitive."""

EVENTS = frozenset(
    {
        "MEDIA_START",
        "DTMF_END",
        "MEDIA_XOFF",
        "MEDIA_XON",
        "STATUS",
        "MEDIA_BUFFERING_COMPLETED",
        "MEDIA_MARK_PROCESSED",
        "QUEUE_DRAINED",
        "ERROR",
    }
)
"""Events Asterisk sends [WS-DOC "Events"; ``ERROR`` from WS-SRC ``_create_event_ERROR``]."""

ORDERED_COMMANDS = frozenset(
    {"START_MEDIA_BUFFERING", "STOP_MEDIA_BUFFERING", "MARK_MEDIA", "REPORT_QUEUE_DRAINED"}
)
"""Commands that refer to the media sent before them, so they queue behind held audio."""

POSITIONAL_PARAMS = {
    "STOP_MEDIA_BUFFERING": "correlation_id",
    "MEDIA_BUFFERING_COMPLETED": "correlation_id",
    "MARK_MEDIA": "correlation_id",
    "MEDIA_MARK_PROCESSED": "correlation_id",
    "SET_MEDIA_DIRECTION": "direction",
}
"""Plain-text messages whose one parameter is written bare after the name:
``STOP_MEDIA_BUFFERING <id>``, ``MEDIA_BUFFERING_COMPLETED <id>`` [WS-DOC;
WS-SRC ``handle_command`` takes everything after the first space]. The
plain-text forms of ``MARK_MEDIA``, ``MEDIA_MARK_PROCESSED`` and
``SET_MEDIA_DIRECTION`` are not documented (those are JSON-era features);
they follow the same pattern here."""

_INT_PARAMS = frozenset({"optimal_frame_size", "ptime", "queue_length", "xon_level", "xoff_level"})
_BOOL_PARAMS = frozenset({"queue_full", "bulk_media", "media_paused"})
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(.*)$")
_CONNECTION_ID = re.compile(r"^[A-Za-z0-9._~-]+$")


# -- codecs -------------------------------------------------------------------


@dataclass(frozen=True)
class AsteriskCodec:
    """A format chan_websocket can re-frame, as it travels in BINARY messages.

    Attributes:
        name: Asterisk's format name (``MEDIA_START format:``).
        sample_rate: Samples per second.
        sample_width: Bytes per sample on the wire (1 for G.711, 2 for slin).
        kind: ``"ulaw"``, ``"alaw"`` or ``"slin"`` (16-bit signed linear).
    """

    name: str
    sample_rate: int
    sample_width: int
    kind: Literal["ulaw", "alaw", "slin"]

    def encode(self, pcm: bytes) -> bytes:
        """16-bit PCM at :attr:`sample_rate` to the wire format."""
        if self.kind == "ulaw":
            return pcm_to_mulaw(pcm)
        if self.kind == "alaw":
            return pcm_to_alaw(pcm)
        return pcm

    def decode(self, data: bytes) -> bytes:
        """Wire format to 16-bit PCM at :attr:`sample_rate`."""
        if self.kind == "ulaw":
            return mulaw_to_pcm(data)
        if self.kind == "alaw":
            return alaw_to_pcm(data)
        return data[: len(data) // 2 * 2]

    def silence(self, nbytes: int) -> bytes:
        """``nbytes`` of silence in the wire format."""
        return self.encode(b"\x00\x00" * (nbytes // self.sample_width))

    def frame_bytes(self, ptime_ms: int) -> int:
        """Bytes of ``ptime_ms`` milliseconds of audio."""
        return self.sample_rate * ptime_ms // 1000 * self.sample_width


def _slin(name: str, rate: int) -> AsteriskCodec:
    # Asterisk's signed linear is in host byte order; chan_websocket sends the
    # frame data as is, i.e. little-endian on x86-64 and ARM64 hosts.
    return AsteriskCodec(name, rate, 2, "slin")


CODECS: dict[str, AsteriskCodec] = {
    "ulaw": AsteriskCodec("ulaw", 8000, 1, "ulaw"),
    "alaw": AsteriskCodec("alaw", 8000, 1, "alaw"),
    "slin": _slin("slin", 8000),
    "slin12": _slin("slin12", 12000),
    "slin16": _slin("slin16", 16000),
    "slin24": _slin("slin24", 24000),
    "slin32": _slin("slin32", 32000),
    "slin44": _slin("slin44", 44100),
    "slin48": _slin("slin48", 48000),
    "slin96": _slin("slin96", 96000),
    "slin192": _slin("slin192", 192000),
}
"""Formats the serializer can encode and decode. Passthrough codecs (opus,
speex, g729: no ``optimal_frame_size`` [WS-DOC "passthrough mode"]) and
others (g722, gsm...) are not supported."""


# -- control messages -----------------------------------------------------------


@dataclass
class ControlMessage:
    """One control command or event, in either format.

    Attributes:
        name: ``MEDIA_START``, ``FLUSH_MEDIA``...
        params: Its parameters, typed (ints, bools, nested objects for JSON).
        kind: ``"event"`` (from Asterisk) or ``"command"`` (from the app).
        format: The format it was written in.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    kind: Literal["event", "command"] = "event"
    format: ControlFormat = "plain-text"

    def get(self, key: str, default: Any = None) -> Any:
        """A parameter, or ``default``."""
        return self.params.get(key, default)


def _coerce(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key in _INT_PARAMS:
            try:
                return int(value)
            except ValueError:
                return value
        if key in _BOOL_PARAMS and value in ("true", "false"):
            return value == "true"
    return value


def parse_control(text: str) -> ControlMessage:
    """Parse a TEXT message in either control format (detected from its first character).

    JSON: ``{"event": "MEDIA_XOFF", "channel_id": ...}`` or ``{"command":
    ...}``. Plain text: ``NAME key:value key:value`` on one line [WS-DOC
    "Control Commands and Events"], e.g. ``MEDIA_START connection_id:...
    channel:... format:ulaw optimal_frame_size:160 ptime:20``; a value may
    contain spaces (``ERROR ... error_text:Unable to parse JSON command``
    [WS-SRC]), and ``STOP_MEDIA_BUFFERING``/``MEDIA_BUFFERING_COMPLETED``
    carry their id bare.

    Raises:
        ValueError: If the text is empty, not valid JSON, or names nothing.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty control message")
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON control message: {e}") from e
        if not isinstance(obj, dict):
            raise ValueError("JSON control message is not an object")
        kind: Literal["event", "command"]
        if isinstance(obj.get("event"), str):
            kind, name = "event", obj.pop("event")
        elif isinstance(obj.get("command"), str):
            kind, name = "command", obj.pop("command")
        else:
            raise ValueError("JSON control message has no 'event' or 'command'")
        typed = {k: _coerce(k, v) for k, v in obj.items()}
        return ControlMessage(name, typed, kind, "json")

    name, _, rest = stripped.partition(" ")
    rest = rest.strip()
    params: dict[str, Any] = {}
    positional = POSITIONAL_PARAMS.get(name)
    if positional is not None:
        if rest:
            params[positional] = rest
    else:
        key: str | None = None
        extra: list[str] = []
        for token in rest.split():
            match = _KEY_VALUE.match(token)
            if match:
                key = match.group(1)
                params[key] = match.group(2)
            elif key is not None:
                params[key] += " " + token
            else:
                extra.append(token)
        if extra:
            params["args"] = " ".join(extra)
        params = {k: _coerce(k, v) for k, v in params.items()}
    kind = "command" if name in COMMANDS else "event"
    return ControlMessage(name, params, kind, "plain-text")


def format_control(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    fmt: ControlFormat,
    kind: Literal["event", "command"] = "command",
) -> str:
    """Write a command (or, for a fake Asterisk, an event) in ``fmt``.

    JSON is written compactly, one object per message [WS-DOC: "there must
    be only a single command object in each WebSocket TEXT frame"];
    parameters that are None are left out. Plain text is ``NAME`` followed by
    ``key:value`` pairs, or the bare id for the positional ones (see
    :data:`POSITIONAL_PARAMS`).
    """
    values = {k: v for k, v in (params or {}).items() if v is not None}
    if fmt == "json":
        key = "command" if kind == "command" else "event"
        return json.dumps({key: name, **values}, separators=(",", ":"))
    if fmt != "plain-text":
        raise ValueError(f"unknown control format {fmt!r}")
    parts = [name]
    positional = POSITIONAL_PARAMS.get(name)
    for k, v in values.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (dict, list)):
            continue  # channel_variables: JSON only [WS-DOC "Events" footnote 2]
        if k == positional:
            if v != "":
                parts.append(str(v))
        else:
            parts.append(f"{k}:{v}")
    return " ".join(parts)


@dataclass
class MediaStart:
    """What ``MEDIA_START`` said about the stream [WS-DOC "Events" / ``MEDIA_START``]."""

    connection_id: str
    channel: str
    channel_id: str
    format: str
    optimal_frame_size: int
    ptime: int
    channel_variables: dict[str, str]
    control_format: ControlFormat

    @classmethod
    def from_message(cls, message: ControlMessage) -> MediaStart:
        """Read a parsed ``MEDIA_START``; missing numbers are 0."""
        variables = message.get("channel_variables")
        return cls(
            connection_id=str(message.get("connection_id", "")),
            channel=str(message.get("channel", "")),
            channel_id=str(message.get("channel_id", "")),
            format=str(message.get("format", "")),
            optimal_frame_size=int(message.get("optimal_frame_size") or 0),
            ptime=int(message.get("ptime") or 0),
            channel_variables=dict(variables) if isinstance(variables, dict) else {},
            control_format=message.format,
        )


# -- connection recipe ----------------------------------------------------------


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


# -- the serializer ---------------------------------------------------------------


@dataclass
class AsteriskStats:
    """What happened on the media stream (counters only grow).

    Attributes:
        media_starts: ``MEDIA_START`` events.
        xoff: ``MEDIA_XOFF`` events.
        xon: ``MEDIA_XON`` events.
        paused_secs: Time spent paused by ``MEDIA_XOFF``.
        held_peak_secs: Most bot audio held at once (XOFF, queue bound, before MEDIA_START).
        dropped_audio_secs: Held bot audio dropped (``max_held_secs``,
            ``end_timeout_secs``, cancel, connection gone).
        interrupted_audio_secs: Held or partial bot audio dropped by an interruption.
        flushes: ``FLUSH_MEDIA`` commands sent.
        dtmf: ``DTMF_END`` events turned into ``InputDTMFFrame``.
        dtmf_ignored: ``DTMF_END`` digits Pipecat has no key for (A-D).
        events: Count per event name, including unknown ones.
        last_status: Parameters of the last ``STATUS``.
        errors: ``error_text`` of ``ERROR`` events.
    """

    media_starts: int = 0
    xoff: int = 0
    xon: int = 0
    paused_secs: float = 0.0
    held_peak_secs: float = 0.0
    dropped_audio_secs: float = 0.0
    interrupted_audio_secs: float = 0.0
    flushes: int = 0
    dtmf: int = 0
    dtmf_ignored: int = 0
    events: Counter[str] = field(default_factory=Counter)
    last_status: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)


EventHandler = Callable[[ControlMessage], "Awaitable[None] | None"]
"""Called with every control event received (sync or async)."""


class AsteriskSerializer(FrameSerializer):
    """Speak chan_websocket's media protocol as the app that dials Asterisk.

    Example::

        serializer = AsteriskSerializer()
        transport = WebsocketClientTransport(
            asterisk_media_uri("ws://pbx:8088", connection_id),
            asterisk_params(serializer),
        )

    See the module documentation for the Asterisk side and the behaviour.
    """

    supports_native_dtmf = False
    """chan_websocket has no command to send DTMF; Pipecat plays tones instead."""

    def __init__(
        self,
        *,
        control_format: Literal["auto", "plain-text", "json"] = "auto",
        media_buffering: bool = False,
        answer: bool = False,
        max_queued_frames: int | None = DEFAULT_MAX_QUEUED_FRAMES,
        resume_queued_frames: int = DEFAULT_RESUME_QUEUED_FRAMES,
        max_held_secs: float | None = 60.0,
        tail_flush_secs: float = 0.25,
        end_timeout_secs: float = 10.0,
        on_event: EventHandler | None = None,
    ):
        """Initialize the serializer.

        Args:
            control_format: Format of the commands we send. ``"auto"`` uses
                the format ``MEDIA_START`` arrived in (Asterisk expects
                commands in the channel's configured format [WS-SRC
                ``handle_command``]). Received messages are always
                auto-detected.
            media_buffering: Wrap each stretch of bot audio in
                ``START_MEDIA_BUFFERING`` / ``STOP_MEDIA_BUFFERING <id>``.
            answer: Send ``ANSWER`` after ``MEDIA_START`` (for channels dialed
                with ``n``, "don't auto-answer" [WS-DOC]).
            max_queued_frames: Most frames we let Asterisk's queue hold by our
                estimate; None relies on MEDIA_XOFF alone (audio sent while an
                XOFF is in flight may then be dropped by Asterisk).
            resume_queued_frames: The bound after the first ``MEDIA_XOFF``.
            max_held_secs: Most bot audio held (oldest dropped beyond); None
                for no bound.
            tail_flush_secs: After this long without bot audio, send the last
                partial frame padded with silence (and ``STOP_MEDIA_BUFFERING``).
            end_timeout_secs: On ``EndFrame``, how long to wait for held
                audio to go out and Asterisk's queue to play out before
                ``HANGUP``; 0 hangs up at once.
            on_event: Called with every control event received.
        """
        super().__init__()
        if control_format not in ("auto", "plain-text", "json"):
            raise ValueError(f"control_format must be auto, plain-text or json: {control_format!r}")
        if max_queued_frames is not None and max_queued_frames < 1:
            raise ValueError("max_queued_frames must be >= 1 or None")
        self._control_format = control_format
        self._media_buffering = media_buffering
        self._answer = answer
        self._max_queued_frames = max_queued_frames
        self._resume_queued_frames = max(1, resume_queued_frames)
        self._max_held_secs = max_held_secs
        self._tail_flush_secs = tail_flush_secs
        self._end_timeout_secs = end_timeout_secs
        self._on_event = on_event

        self._pipeline_in_rate = 16000
        self._io: Any = None
        self._correlation = itertools.count(1)
        self._generation = 0
        self.stats = AsteriskStats()
        self.events: deque[ControlMessage] = deque(maxlen=200)
        self._reset_stream()

    # -- state ------------------------------------------------------------------

    def _reset_stream(self) -> None:
        """Forget the previous stream (a new connection is a new stream)."""
        self._start: MediaStart | None = None
        self._codec: AsteriskCodec | None = None
        self._frame_bytes = 0
        self._ptime = 0.02
        self._tx_format: ControlFormat = (
            "plain-text" if self._control_format == "auto" else self._control_format
        )
        self._pre_start: list[OutputAudioRawFrame] = []
        self._held: deque[str | bytes] = deque()
        self._held_bytes = 0
        self._tail = b""
        self._paused = False
        self._paused_since = 0.0
        self._cap = self._max_queued_frames
        self._xon_level = QUEUE_XON_LEVEL
        self._playout_end = 0.0
        self._last_audio_at = 0.0
        self._resampled_out = False
        self._bulk_open = False
        self._ended = False
        self._unsupported: str | None = None
        self._generation += 1  # Whatever was being encoded belongs to the old stream.
        self._out_resampler = create_stream_resampler()
        self._in_resampler = create_stream_resampler()

    @property
    def media_start(self) -> MediaStart | None:
        """The current stream's ``MEDIA_START``, once received."""
        return self._start

    @property
    def codec(self) -> AsteriskCodec | None:
        """The current stream's codec, once ``MEDIA_START`` has arrived."""
        return self._codec

    @property
    def paused(self) -> bool:
        """Whether Asterisk has said ``MEDIA_XOFF`` and not ``MEDIA_XON`` yet."""
        return self._paused

    @property
    def control_format(self) -> ControlFormat:
        """The format our commands are written in."""
        return self._tx_format

    @property
    def held_audio_secs(self) -> float:
        """Bot audio held right now (waiting for XON or queue room)."""
        return self._secs(self._held_bytes)

    def queued_frames_estimate(self, now: float | None = None) -> float:
        """Our estimate of Asterisk's queue: frames sent minus one played per ptime."""
        now = time.monotonic() if now is None else now
        return max(0.0, self._playout_end - now) / self._ptime

    def _secs(self, nbytes: int) -> float:
        codec = self._codec
        if codec is None:
            return 0.0
        return nbytes / (codec.sample_rate * codec.sample_width)

    def _frames(self, nbytes: int) -> int:
        return nbytes // self._frame_bytes if self._frame_bytes else 0

    # -- FrameSerializer --------------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Take the pipeline's input rate for the caller's audio."""
        self._pipeline_in_rate = setup.audio_in_sample_rate

    async def session_start_messages(self) -> list[str | bytes]:
        """A new connection is a new stream: forget the old one. The app sends nothing first."""
        self._drop_held("a new connection")
        self._reset_stream()
        return []

    async def attach(self, io) -> None:
        """Start releasing held audio and flushing tails (called by the transport)."""
        self._io = io
        io.create_task(self._run(), f"{self}::asterisk")

    async def serialize(self, frame: Frame) -> str | bytes | list[str | bytes] | None:  # type: ignore[override]
        """Bot audio as BINARY messages (possibly held), and the commands.

        Returns a single message at most, so that it is written before
        anything held can be released behind it; the rest waits in order.
        """
        if isinstance(frame, OutputAudioRawFrame):
            return await self._serialize_audio(frame)
        if isinstance(frame, InterruptionFrame):
            return self._interrupt()
        if isinstance(frame, EndFrame):
            return await self._end()
        if isinstance(frame, CancelFrame):
            return self._cancel()
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            return self._serialize_message(frame)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Caller audio as ``InputAudioRawFrame``; events handled, ``DTMF_END`` as a frame.

        Raises:
            ValueError: For media before ``MEDIA_START`` or in a format we
                cannot decode, and for unparseable control messages.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            return await self._deserialize_media(bytes(data))
        message = parse_control(data)
        return await self._handle_event(message)

    # -- commands ---------------------------------------------------------------

    def format_command(self, name: str, **params: Any) -> str:
        """A command in the stream's control format.

        Raises:
            ValueError: If the name is not a command or the text would be
                longer than Asterisk reads (:data:`MAX_COMMAND_BYTES`).
        """
        if name not in COMMANDS:
            raise ValueError(f"not a chan_websocket command: {name!r}")
        text = format_control(name, params, fmt=self._tx_format)
        if len(text.encode()) > MAX_COMMAND_BYTES:
            raise ValueError(f"command longer than {MAX_COMMAND_BYTES} bytes: {text!r}")
        return text

    async def send_command(self, name: str, **params: Any) -> bool:
        """Send a command, e.g. ``send_command("GET_STATUS")``.

        ``MARK_MEDIA``, ``START/STOP_MEDIA_BUFFERING`` and
        ``REPORT_QUEUE_DRAINED`` refer to the audio sent before them, so
        they wait behind audio being held; the others go at once.

        Returns:
            False if the stream has not started (no ``MEDIA_START`` yet) or
            the connection is gone.
        """
        if self._codec is None or self._io is None:
            return False
        text = self.format_command(name, **params)
        if name in ORDERED_COMMANDS and self._held:
            self._enqueue(text)
            return True
        return bool(await self._io.send(text))

    async def request_status(self) -> bool:
        """Ask for a ``STATUS`` event (``GET_STATUS``); see ``stats.last_status``."""
        return await self.send_command("GET_STATUS")

    def _serialize_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> str | list[str | bytes] | None:
        message = frame.message
        if self.should_ignore_frame(frame) or not isinstance(message, dict):
            return None
        name = message.get("command")
        if not isinstance(name, str) or self._codec is None:
            return None
        params = {k: v for k, v in message.items() if k != "command"}
        try:
            text = self.format_command(name, **params)
        except ValueError as e:
            logger.warning(f"{self}: not sending {message}: {e}")
            return None
        if self._held and isinstance(frame, OutputTransportMessageFrame):
            self._enqueue(text)  # In its place behind the held audio.
            return []
        return text

    # -- bot audio ----------------------------------------------------------------

    async def _serialize_audio(self, frame: OutputAudioRawFrame) -> list[str | bytes] | None:
        if self._ended:
            return None
        now = time.monotonic()
        if self._codec is None or self._pre_start:
            if self._unsupported is not None:
                return None
            # Before MEDIA_START we do not know the codec yet: keep the audio.
            self._pre_start.append(frame)
            self._last_audio_at = now
            return []
        generation = self._generation
        if self._media_buffering and not self._bulk_open:
            self._bulk_open = True
            start = self.format_command("START_MEDIA_BUFFERING")
            if self._held or self._io is None:
                self._enqueue(start)
            else:
                await self._io.send(start)
        messages = await self._encode(frame.audio, frame.sample_rate)
        if generation != self._generation:
            return None  # An interruption came while we were encoding this.
        self._last_audio_at = now = time.monotonic()
        if not messages:
            return []
        # From here on no awaits: what we return is written before anything
        # held can be released behind it.
        first = messages[0]
        if self._held or not self._may_send(first, now):
            for message in messages:
                self._enqueue(message)
            return []
        for message in messages[1:]:
            self._enqueue(message)
        self._note_sent(first, now)
        return [first]

    async def _encode(self, pcm: bytes, sample_rate: int) -> list[str | bytes]:
        """PCM to whole frames in the codec, split to fit a message; keep the remainder."""
        codec = self._codec
        assert codec is not None
        if sample_rate != codec.sample_rate:
            self._resampled_out = True
            pcm = await self._out_resampler.resample(pcm, sample_rate, codec.sample_rate)
        data = self._tail + codec.encode(pcm)
        size = self._frame_bytes
        whole = len(data) // size * size
        self._tail = data[whole:]
        return list(self._split(data[:whole]))

    def _split(self, data: bytes) -> list[bytes]:
        # Whole frames, at most MAX_MESSAGE_BYTES per message [WS-DOC "Media
        # Transfer": multiples of optimal_frame_size; "Max Message Size"].
        per_message = MAX_MESSAGE_BYTES // self._frame_bytes * self._frame_bytes
        return [data[i : i + per_message] for i in range(0, len(data), per_message)]

    def _may_send(self, message: str | bytes, now: float) -> bool:
        """Whether a message may go now (nothing held before it, not paused, room)."""
        if isinstance(message, str):
            return True
        if self._paused:
            return False
        if self._cap is None:
            return True
        return self.queued_frames_estimate(now) + self._frames(len(message)) <= self._cap

    def _note_sent(self, message: str | bytes, now: float) -> None:
        if isinstance(message, bytes):
            frames = self._frames(len(message))
            self._playout_end = max(self._playout_end, now) + frames * self._ptime

    def _enqueue(self, message: str | bytes) -> None:
        """Hold a message behind what is already held."""
        self._held.append(message)
        if isinstance(message, bytes):
            self._held_bytes += len(message)
            self.stats.held_peak_secs = max(self.stats.held_peak_secs, self.held_audio_secs)
            self._enforce_held_limit()

    def _enforce_held_limit(self) -> None:
        if self._max_held_secs is None or self._codec is None:
            return
        limit = int(self._max_held_secs * self._codec.sample_rate * self._codec.sample_width)
        dropped = 0
        while self._held_bytes > limit:
            index = next((i for i, m in enumerate(self._held) if isinstance(m, bytes)), None)
            if index is None:
                break
            message = self._held[index]
            del self._held[index]
            self._held_bytes -= len(message)
            dropped += len(message)
        if dropped:
            self.stats.dropped_audio_secs += self._secs(dropped)
            logger.warning(
                f"{self}: holding more than {self._max_held_secs}s of audio for Asterisk, "
                f"dropped the oldest {self._secs(dropped):.2f}s"
            )

    async def _release_held(self, *, ignore_pause: bool = False) -> None:
        """Send held messages, in order, while Asterisk has room for them.

        Each message is taken off the queue and written without yielding in
        between, so concurrent releasers cannot reorder them.
        """
        while self._held and self._io is not None and (ignore_pause or not self._paused):
            message = self._held[0]
            now = time.monotonic()
            if isinstance(message, bytes) and self._cap is not None:
                if self.queued_frames_estimate(now) + self._frames(len(message)) > self._cap:
                    return
            self._held.popleft()
            if isinstance(message, bytes):
                self._held_bytes -= len(message)
                self._note_sent(message, now)
            if not await self._io.send(message):
                self._drop_held("the connection is gone")
                return

    def _flush_tail(self) -> None:
        """The bot went quiet: send the last partial frame, padded (and end the bulk)."""
        codec = self._codec
        if codec is None:
            return
        if self._tail:
            padded = self._tail + codec.silence(self._frame_bytes - len(self._tail))
            self._tail = b""
            self._enqueue(padded)
        if self._bulk_open:
            self._bulk_open = False
            correlation_id = f"pipecat-{next(self._correlation)}"
            self._enqueue(
                self.format_command("STOP_MEDIA_BUFFERING", correlation_id=correlation_id)
            )

    async def _flush_resampler(self) -> None:
        codec = self._codec
        if codec is None or not self._resampled_out:
            return
        self._resampled_out = False
        rest = await self._out_resampler.flush()
        if rest:
            self._tail += codec.encode(rest)
            size = self._frame_bytes
            whole = len(self._tail) // size * size
            for message in self._split(self._tail[:whole]):
                self._enqueue(message)
            self._tail = self._tail[whole:]

    async def _run(self) -> None:
        """Release held audio as Asterisk's queue drains; flush the tail when quiet."""
        while True:
            if self._codec is not None and not self._ended:
                quiet = time.monotonic() - self._last_audio_at >= self._tail_flush_secs
                if quiet and self._last_audio_at and not self._pre_start:
                    if self._tail or self._bulk_open or self._resampled_out:
                        await self._flush_resampler()
                        self._flush_tail()
                await self._release_held()
            await asyncio.sleep(self._ptime)

    def _drop_held(self, why: str) -> None:
        dropped = self._held_bytes
        self._held.clear()
        self._held_bytes = 0
        if self._pre_start:
            dropped_pcm = sum(len(f.audio) / (2 * f.sample_rate) for f in self._pre_start)
            self.stats.dropped_audio_secs += dropped_pcm
            self._pre_start.clear()
        if dropped:
            self.stats.dropped_audio_secs += self._secs(dropped)
            logger.warning(f"{self}: {why}: dropped {self._secs(dropped):.2f}s of held audio")

    # -- interruptions and the end ------------------------------------------------

    def _interrupt(self) -> str | None:
        self._generation += 1
        dropped = self._held_bytes + len(self._tail)
        self.stats.interrupted_audio_secs += self._secs(dropped)
        self._held.clear()
        self._held_bytes = 0
        self._tail = b""
        self._pre_start.clear()
        # What the resampler still holds is from before the interruption too.
        self._out_resampler = create_stream_resampler()
        self._resampled_out = False
        self._bulk_open = False  # FLUSH_MEDIA ends a bulk transfer [WS-DOC "FLUSH_MEDIA"]
        if self._codec is None or self._ended:
            return None
        self._playout_end = time.monotonic()  # Asterisk drops its whole queue.
        self.stats.flushes += 1
        return self.format_command("FLUSH_MEDIA")

    async def _end(self) -> str | None:
        if self._ended:
            return None
        if self._codec is None:
            self._ended = True
            self._drop_held("the call ended before MEDIA_START")
            return self._hangup_text()
        loop_time = time.monotonic
        deadline = loop_time() + max(0.0, self._end_timeout_secs)
        await self._flush_resampler()
        self._flush_tail()
        self._ended = True
        # The input has stopped by now, so a MEDIA_XON could not reach us: our
        # estimate of Asterisk's queue decides when the rest may go.
        while self._held and self._io is not None and loop_time() < deadline:
            await self._release_held(ignore_pause=True)
            if self._held:
                await asyncio.sleep(self._ptime)
        self._drop_held(f"hanging up after {self._end_timeout_secs}s")
        # Let the caller hear what Asterisk still queues before hanging up.
        wait = min(self._playout_end, deadline) - loop_time()
        if wait > 0:
            await asyncio.sleep(wait)
        return self._hangup_text()

    def _cancel(self) -> str | None:
        if self._ended:
            return None
        self._ended = True
        self._drop_held("the call was cancelled")
        return self._hangup_text()

    def _hangup_text(self) -> str:
        # HANGUP hangs the channel up and closes the socket [WS-DOC "HANGUP"].
        return self.format_command("HANGUP")

    # -- caller audio and events -------------------------------------------------

    async def _deserialize_media(self, data: bytes) -> Frame | None:
        codec = self._codec
        if codec is None:
            raise ValueError(
                self._unsupported or "media before MEDIA_START (the format is not known yet)"
            )
        pcm = codec.decode(data)
        if codec.sample_rate != self._pipeline_in_rate:
            pcm = await self._in_resampler.resample(pcm, codec.sample_rate, self._pipeline_in_rate)
        if not pcm:
            return None
        return InputAudioRawFrame(pcm, self._pipeline_in_rate, 1)

    async def _handle_event(self, message: ControlMessage) -> Frame | None:
        self.events.append(message)
        self.stats.events[message.name] += 1
        name = message.name
        frame: Frame | None = None
        if name == "MEDIA_START":
            await self._on_media_start(message)
        elif name == "MEDIA_XOFF":
            self._on_xoff()
        elif name == "MEDIA_XON":
            await self._on_xon()
        elif name == "DTMF_END":
            frame = self._on_dtmf(message)
        elif name == "STATUS":
            self._on_status(message)
        elif name == "ERROR":
            text = str(message.get("error_text", ""))
            self.stats.errors.append(text)
            logger.warning(f"{self}: Asterisk reported an error: {text}")
        elif name in ("MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED", "QUEUE_DRAINED"):
            logger.debug(f"{self}: {name} {message.params}")
        else:
            logger.debug(f"{self}: unknown control message {name} {message.params}")
        if self._on_event is not None:
            result = self._on_event(message)
            if inspect.isawaitable(result):
                await result
        return frame

    async def _on_media_start(self, message: ControlMessage) -> None:
        start = MediaStart.from_message(message)
        self.stats.media_starts += 1
        self._start = start
        if self._control_format == "auto":
            self._tx_format = message.format
        codec = CODECS.get(start.format)
        if codec is None:
            self._unsupported = f"unsupported chan_websocket format {start.format!r}"
            logger.error(
                f"{self}: {self._unsupported}; use one of {', '.join(CODECS)} in the dial string"
            )
            self._drop_held(self._unsupported)
            return
        frame_bytes = start.optimal_frame_size or codec.frame_bytes(start.ptime or 20)
        if frame_bytes % codec.sample_width:
            self._unsupported = f"optimal_frame_size {frame_bytes} is not whole samples"
            logger.error(f"{self}: {self._unsupported}")
            return
        ptime_ms = start.ptime or 1000 * frame_bytes / (codec.sample_rate * codec.sample_width)
        self._unsupported = None
        self._frame_bytes = frame_bytes
        self._ptime = ptime_ms / 1000
        self._playout_end = 0.0
        self._codec = codec
        logger.info(
            f"{self}: MEDIA_START {start.channel} ({start.connection_id}): {codec.name} "
            f"{codec.sample_rate} Hz, {frame_bytes}-byte frames every {ptime_ms:g} ms, "
            f"{message.format} control messages"
        )
        if self._answer and self._io is not None:
            await self._io.send(self.format_command("ANSWER"))
        # Audio the bot produced before MEDIA_START goes first, in order.
        while self._pre_start:
            frame = self._pre_start.pop(0)
            messages = await self._encode(frame.audio, frame.sample_rate)
            if messages and self._media_buffering and not self._bulk_open:
                self._bulk_open = True
                self._enqueue(self.format_command("START_MEDIA_BUFFERING"))
            for encoded in messages:
                self._enqueue(encoded)
        await self._release_held()

    def _on_xoff(self) -> None:
        self.stats.xoff += 1
        if not self._paused:
            self._paused = True
            self._paused_since = time.monotonic()
        if self._cap is not None:
            self._cap = min(self._cap, self._resume_queued_frames)
        logger.debug(f"{self}: MEDIA_XOFF, holding audio")

    async def _on_xon(self) -> None:
        self.stats.xon += 1
        now = time.monotonic()
        if self._paused:
            self._paused = False
            self.stats.paused_secs += now - self._paused_since
        # XON is sent when the queue has just dropped below the XON level: a
        # known point to re-anchor our estimate of it [WS-SRC ``dequeue_frame``].
        self._playout_end = now + (self._xon_level - 1) * self._ptime
        logger.debug(f"{self}: MEDIA_XON, releasing {self.held_audio_secs:.2f}s of held audio")
        await self._release_held()

    def _on_dtmf(self, message: ControlMessage) -> Frame | None:
        digit = str(message.get("digit", ""))
        try:
            button = KeypadEntry(digit)
        except ValueError:
            self.stats.dtmf_ignored += 1
            logger.warning(f"{self}: ignoring DTMF digit {digit!r} (no Pipecat key for it)")
            return None
        self.stats.dtmf += 1
        return InputDTMFFrame(button)

    def _on_status(self, message: ControlMessage) -> None:
        self.stats.last_status = dict(message.params)
        xon = message.get("xon_level")
        if isinstance(xon, int) and xon > 0:
            self._xon_level = xon  # Where MEDIA_XON re-anchors our queue estimate.
        logger.info(f"{self}: STATUS {message.params}")


__all__ = [
    "CODECS",
    "MAX_COMMAND_BYTES",
    "MAX_MESSAGE_BYTES",
    "QUEUE_LENGTH_MAX",
    "QUEUE_XOFF_LEVEL",
    "QUEUE_XON_LEVEL",
    "AsteriskCodec",
    "AsteriskSerializer",
    "AsteriskStats",
    "ControlMessage",
    "MediaStart",
    "asterisk_media_uri",
    "asterisk_params",
    "format_control",
    "parse_control",
]
