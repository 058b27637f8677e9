#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The carriers' rules on what a bot sends them, checked on every message (pure, no I/O).

A real carrier is strict about the bot's side of a media stream, and a bot
that breaks its rules is heard badly or not at all in production:

- Twilio rejects binary frames (error 31950, "Malformed Message") and
  messages that are not JSON, of an unknown type, with a missing or extra
  field, or with another ``streamSid`` (31951, "Invalid Message")
  (https://www.twilio.com/docs/api/errors/31950, .../31951,
  https://www.twilio.com/docs/voice/media-streams/websocket-messages).
- Telnyx takes ``media`` (base64 ``payload``), ``mark`` and ``clear``, and
  answers a malformed message with an ``error`` event
  (https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming).
- Plivo takes ``playAudio`` (``media`` with ``contentType``
  ``audio/x-mulaw`` or ``audio/x-l16``, ``sampleRate`` 8000 or 16000 and a
  base64 ``payload``), ``checkpoint`` and ``clearAudio``
  (https://www.plivo.com/docs/voice/xml/the-stream-element).
- Exotel takes ``media`` whose audio is at least 3.2 kB and a multiple of
  320 bytes (https://support.exotel.com/support/solutions/articles/3000108630).
- Vonage takes binary frames of exactly one 20 ms frame at the call's rate
  (320 bytes at 8 kHz, 640 at 16 kHz) and buffers about 20 s of them
  (https://developer.vonage.com/en/voice/voice-api/concepts/websockets).

Each :class:`Rules` checks one message at a time; :class:`Violations`
counts what broke, per kind, with the first example (shortened, never the
audio) and the carrier's own code where it documents one.

Example::

    rules = rules_for("twilio", stream_id="MZ...")
    log = Violations()
    log.add(rules.check(message))
    log.as_dict()  # {"extra field": {"count": 3, "code": "31951", "example": "..."}}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipecat_wsclient import peer_json

EXAMPLE_CHARS = 120
"""The most of a message kept as a violation's example."""


@dataclass(frozen=True)
class Violation:
    """One message that broke a carrier's rule.

    Parameters:
        kind: What broke (``binary frame``, ``wrong streamSid``...).
        code: The carrier's error code or name for it, if it documents one.
        example: The message (or what was wrong with it), shortened.
    """

    kind: str
    code: str | None
    example: str


@dataclass
class Violations:
    """The violations of one call: a count per kind, with the first example."""

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, Violation] = field(default_factory=dict)

    def add(self, found: list[Violation]) -> None:
        """Count ``found``."""
        for v in found:
            self.counts[v.kind] = self.counts.get(v.kind, 0) + 1
            self.first.setdefault(v.kind, v)

    @property
    def total(self) -> int:
        """Messages that broke a rule (one message may break several)."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Per kind: ``count``, ``code`` and ``example`` (for ``--json`` and reports)."""
        return {
            kind: {"count": n, "code": self.first[kind].code, "example": self.first[kind].example}
            for kind, n in self.counts.items()
        }


VONAGE_BUFFER_MESSAGES = 3072
"""The messages Vonage buffers ahead of playback."""


def _short(data: str | bytes) -> str:
    text = data if isinstance(data, str) else f"<{len(data)} bytes, binary>"
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 3] + "..."


def _b64(payload: Any) -> bytes | None:
    if not isinstance(payload, str):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


class Rules:
    """A carrier's rules; this base accepts everything.

    ``max_queued_secs``: the most audio the carrier buffers ahead of playback
    (None: no limit it documents); what a bot sends beyond it is dropped and
    counted as ``buffer full`` (:meth:`overflow`).
    """

    max_queued_secs: ClassVar[float | None] = None

    def overflow(self, queued_secs: float) -> Violation:
        """The violation of a message that found the carrier's buffer full."""
        return Violation("buffer full (audio dropped)", None, f"{queued_secs:.1f} s already queued")

    def check(self, data: str | bytes) -> list[Violation]:
        """The rules ``data`` (one message from the bot) breaks."""
        return []

    def _json(self, data: str | bytes, code: str | None) -> tuple[dict | None, list[Violation]]:
        """The message as a JSON object, or the violation it is."""
        if isinstance(data, bytes):
            return None, [Violation("binary frame", code, _short(data))]
        try:
            message = peer_json.loads(data)  # bounded depth: a hostile bot cannot recurse us
        except ValueError:
            return None, [Violation("not JSON", code, _short(data))]
        if not isinstance(message, dict):
            return None, [Violation("not a JSON object", code, _short(data))]
        return message, []


@dataclass
class TwilioRules(Rules):
    """Twilio's Media Streams: JSON ``media``/``mark``/``clear`` with our ``streamSid``.

    Parameters:
        stream_id: The ``streamSid`` of the stream.
        id_key: The message's key for it.
        malformed: The carrier's code for a frame it cannot decode.
        invalid: Its code for a message that breaks the protocol.
    """

    stream_id: str
    id_key: str = "streamSid"
    malformed: str | None = "31950"
    invalid: str | None = "31951"
    fields: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"media": ("payload",), "mark": ("name",), "clear": ()}
    )

    def check(self, data: str | bytes) -> list[Violation]:
        """See :class:`Rules`."""
        if isinstance(data, bytes):
            return [Violation("binary frame", self.malformed, _short(data))]
        message, found = self._json(data, self.invalid)
        if message is None:
            return found
        event = message.get("event")
        if not isinstance(event, str) or event not in self.fields:
            return [Violation("unknown event", self.invalid, _short(data))]
        if message.get(self.id_key) != self.stream_id:
            found.append(Violation(f"wrong {self.id_key}", self.invalid, _short(data)))
        body_key = "" if event == "clear" else str(event)
        allowed = {"event", self.id_key, *([body_key] if body_key else [])}
        extra = sorted(set(message) - allowed)
        body = message.get(body_key) if body_key else None
        if body_key and not isinstance(body, dict):
            found.append(Violation(f"{event} without its object", self.invalid, _short(data)))
        elif isinstance(body, dict):
            missing = [f for f in self.fields[event] if f not in body]
            if missing:
                found.append(Violation(f"missing field {missing[0]}", self.invalid, _short(data)))
            extra += sorted(f"{body_key}.{k}" for k in set(body) - set(self.fields[event]))
            if event == "media" and "payload" in body and _b64(body["payload"]) is None:
                found.append(Violation("payload not base64", self.invalid, _short(data)))
        if extra:
            found.append(
                Violation("extra field", self.invalid, f"{', '.join(extra)} in {_short(data)}")
            )
        return found


@dataclass
class TelnyxRules(TwilioRules):
    """Telnyx media streaming: Twilio's shape, with ``stream_id``.

    A media chunk holds 20 ms to 30 s of audio (PCMU: 160 to 240,000
    bytes). Telnyx answers a frame it cannot use with an ``error`` event
    (:func:`telnyx_error`): 100003 for a malformed frame, 100004 for
    invalid media.
    """

    id_key: str = "stream_id"
    malformed: str | None = "100003"
    invalid: str | None = "100003"
    min_media: int = 160
    max_media: int = 240_000

    def check(self, data: str | bytes) -> list[Violation]:
        """See :class:`Rules`; a missing ``stream_id`` is allowed (Telnyx takes the socket's)."""
        found = super().check(data)
        if isinstance(data, str) and f'"{self.id_key}"' not in data:
            found = [v for v in found if v.kind != f"wrong {self.id_key}"]
        found = [v for v in found if v.kind != "extra field"]
        if not found and isinstance(data, str) and '"media"' in data:
            media = peer_json.loads(data).get("media")
            audio = _b64(media.get("payload")) if isinstance(media, dict) else None
            if audio is not None and not self.min_media <= len(audio) <= self.max_media:
                kind = "media not 20 ms to 30 s"
                found.append(Violation(kind, "100004", f"{len(audio)} bytes of audio"))
        return found


def telnyx_error(violation: Violation) -> str:
    """The ``error`` event Telnyx sends back for a frame it cannot use."""
    titles = {"100003": "Malformed frame", "100004": "Invalid media"}
    code = violation.code or "100002"
    payload = {
        "code": int(code),
        "title": titles.get(code, "Unknown error"),
        "detail": violation.kind,
    }
    return json.dumps({"event": "error", "payload": payload})


@dataclass
class PlivoRules(Rules):
    """Plivo's audio streams: ``playAudio`` in mu-law or L16 at 8 or 16 kHz."""

    def check(self, data: str | bytes) -> list[Violation]:
        """See :class:`Rules`."""
        message, found = self._json(data, None)
        if message is None:
            return found
        event = message.get("event")
        if event in ("checkpoint", "clearAudio"):
            return []
        if event != "playAudio":
            return [Violation("unknown event", None, _short(data))]
        media = message.get("media")
        if not isinstance(media, dict):
            return [Violation("playAudio without media", None, _short(data))]
        if media.get("contentType") not in ("audio/x-mulaw", "audio/x-l16"):
            found.append(Violation("unsupported contentType", None, _short(data)))
        if media.get("sampleRate") not in (8000, 16000, "8000", "16000"):
            found.append(Violation("unsupported sampleRate", None, _short(data)))
        if _b64(media.get("payload")) is None:
            found.append(Violation("payload not base64", None, _short(data)))
        return found


@dataclass
class ExotelRules(Rules):
    """Exotel's voicebot stream: ``media`` of at least 3.2 kB, in multiples of 320 bytes."""

    min_bytes: int = 3200
    multiple: int = 320

    def check(self, data: str | bytes) -> list[Violation]:
        """See :class:`Rules`."""
        message, found = self._json(data, None)
        if message is None:
            return found
        event = message.get("event")
        if event in ("mark", "clear"):
            return []
        if event != "media":
            return [Violation("unknown event", None, _short(data))]
        media = message.get("media")
        audio = _b64(media.get("payload")) if isinstance(media, dict) else None
        if audio is None:
            return [Violation("payload not base64", None, _short(data))]
        if len(audio) % self.multiple:
            kind = f"media not a multiple of {self.multiple} bytes"
            found.append(Violation(kind, None, f"{len(audio)} bytes of audio"))
        elif len(audio) < self.min_bytes:
            kind = f"media under {self.min_bytes} bytes"
            found.append(Violation(kind, None, f"{len(audio)} bytes of audio"))
        return found


@dataclass
class VonageRules(Rules):
    """Vonage's WebSockets: binary frames of exactly 20 ms at the call's rate.

    Vonage buffers 3072 messages, about 61 s of audio: more is dropped
    (https://developer.vonage.com/en/tutorials/play-audio-into-a-websocket/create-the-websocket/node).
    """

    max_queued_secs: ClassVar[float | None] = VONAGE_BUFFER_MESSAGES * 0.020
    sample_rate: int = 16000

    def check(self, data: str | bytes) -> list[Violation]:
        """See :class:`Rules`."""
        if isinstance(data, str):
            message, found = self._json(data, None)
            if message is not None and message.get("action") not in ("clear", "notify"):
                found.append(Violation("unknown action", None, _short(data)))
            return found
        size = self.sample_rate * 2 // 50
        if len(data) != size:
            kind = f"frame not {size} bytes (20 ms at {self.sample_rate} Hz)"
            return [Violation(kind, None, f"{len(data)} bytes")]
        return []


def rules_for(protocol: str, *, stream_id: str = "", sample_rate: int = 16000) -> Rules:
    """The rules of a carrier's protocol (none for other protocols).

    Args:
        protocol: A ``--protocol`` value.
        stream_id: The stream's id (Twilio's ``streamSid``, Telnyx's ``stream_id``).
        sample_rate: The call's rate on the wire (Vonage).
    """
    if protocol == "twilio":
        return TwilioRules(stream_id)
    if protocol == "telnyx":
        return TelnyxRules(stream_id)
    if protocol == "plivo":
        return PlivoRules()
    if protocol == "exotel":
        return ExotelRules()
    if protocol == "vonage":
        return VonageRules(sample_rate)
    return Rules()
