#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""chan_websocket's control messages, in both formats (pure: no I/O).

TEXT messages are commands (app to Asterisk) and events (Asterisk to app),
written as plain text (``NAME key:value ...``) or as JSON objects, as the
channel's ``f()`` option or ``control_message_format`` says. Sources
([WS-DOC], [WS-SRC], [WS-CONF]) are listed in ``docs/asterisk.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pipecat_wsclient import peer_json

ControlFormat = Literal["plain-text", "json"]
"""The two control message formats [WS-DOC "Control Commands and Events"; WS-CONF]."""

MAX_COMMAND_BYTES = 128
"""TEXT commands longer than this are ignored [WS-SRC ``MAX_TEXT_MESSAGE_LEN``
is ``MIN(128, AST_WEBSOCKET_MAX_RX_PAYLOAD_SIZE - 1)``]."""


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
        ValueError: If the text is empty, not valid JSON (or nests deeper
            than :data:`~pipecat_wsclient.peer_json.MAX_DEPTH`), or names nothing.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty control message")
    if stripped.startswith("{"):
        try:
            obj = peer_json.loads(stripped)
        except ValueError as e:
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


def _count(message: ControlMessage, key: str) -> int:
    """A non-negative integer parameter (0 if missing)."""
    value = message.get(key)
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{message.name} {key} is not a non-negative integer: {value!r}")
    return value


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
        """Read a parsed ``MEDIA_START``; missing numbers are 0.

        Raises:
            ValueError: If ``optimal_frame_size`` or ``ptime`` is not a
                non-negative integer.
        """
        variables = message.get("channel_variables")
        return cls(
            connection_id=str(message.get("connection_id", "")),
            channel=str(message.get("channel", "")),
            channel_id=str(message.get("channel_id", "")),
            format=str(message.get("format", "")),
            optimal_frame_size=_count(message, "optimal_frame_size"),
            ptime=_count(message, "ptime"),
            # Unknown variables are kept as they are, as strings (as Asterisk sends them).
            channel_variables=(
                {str(k): str(v) for k, v in variables.items()}
                if isinstance(variables, dict)
                else {}
            ),
            control_format=message.format,
        )


def command_text(name: str, params: dict[str, Any], *, fmt: ControlFormat) -> str:
    """A command in ``fmt``, checked against what Asterisk accepts.

    Raises:
        ValueError: If the name is not a command or the text would be
            longer than Asterisk reads (:data:`MAX_COMMAND_BYTES`).
    """
    if name not in COMMANDS:
        raise ValueError(f"not a chan_websocket command: {name!r}")
    text = format_control(name, params, fmt=fmt)
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise ValueError(f"command longer than {MAX_COMMAND_BYTES} bytes: {text!r}")
    return text
