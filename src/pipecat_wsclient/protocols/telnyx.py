#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Telnyx's side of a Media Streaming WebSocket: call a Telnyx phone bot without Telnyx.

Messages as documented in Telnyx's "Stream call media over WebSocket"
reference (developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket):
``connected`` (``version``), then ``start`` with the top-level ``stream_id``
and, under ``start``, ``user_id``, ``call_control_id``, ``call_session_id``,
``from``, ``to``, ``client_state``, ``custom_parameters`` and
``media_format`` (the stream's encoding: PCMU by default, or PCMA, or L16
at 8 or 16 kHz, as ``bidirectionalCodec`` picks; 1 channel); then ``media``
with base64 audio in that encoding in 20 ms chunks (``track``, ``chunk``,
``timestamp`` in ms), ``mark`` echoes, ``dtmf`` and ``stop`` (``user_id``,
``call_control_id``). Every message after ``connected`` carries a
``sequence_number`` (a string) and the ``stream_id``. From the bot:
``media``, ``mark`` and ``clear``; a clear also returns the queued marks.
"""

from __future__ import annotations

import datetime
import json
import secrets
import uuid

from pipecat_wsclient.protocols.audio import AudioCodec
from pipecat_wsclient.protocols.json_carrier import JsonMuLawStream
from pipecat_wsclient.protocols.rules import Violation, telnyx_error

ENCODINGS = {
    ("PCMU", 8000): AudioCodec("PCMU", 8000, 1, "ulaw"),
    ("PCMA", 8000): AudioCodec("PCMA", 8000, 1, "alaw"),
    ("L16", 8000): AudioCodec("L16", 8000, 2, "slin"),
    ("L16", 16000): AudioCodec("L16", 16000, 2, "slin"),
}
"""The stream encodings Telnyx offers (``bidirectionalCodec``), with their rates and codecs."""


def telnyx_call_control_id() -> str:
    """A random id in Telnyx's call-control format: ``v3:`` and 54 URL-safe characters."""
    return "v3:" + secrets.token_urlsafe(40)[:54]


def random_number() -> str:
    """A random E.164 number in the fictional 555-01xx range."""
    return f"+1{secrets.randbelow(800) + 200}55501{secrets.randbelow(100):02d}"


class TelnyxCarrierSerializer(JsonMuLawStream):
    """Play Telnyx's side of a media stream (the bot under test is the server).

    Used as the transport's serializer (example: :class:`.CarrierSerializer`).
    """

    carrier_name = "telnyx"

    sequence_key = "sequence_number"
    stream_key = "stream_id"
    stream_attr = "stream_id"

    def __init__(
        self,
        *,
        stream_id: str | None = None,
        call_control_id: str | None = None,
        call_session_id: str | None = None,
        user_id: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        client_state: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        encoding: str = "PCMU",
        sample_rate: int = 8000,
    ):
        """Initialize the serializer.

        Args:
            stream_id: The stream id (a UUID); random if not given.
            call_control_id: The call id (``v3:...``); random if not given.
            call_session_id: The call session id (a UUID); random if not given.
            user_id: The account id (a UUID); random if not given.
            from_number: The caller's number; random if not given.
            to_number: The dialed number; random if not given.
            client_state: Base64 state set on the call, sent in ``start`` if given.
            custom_parameters: Custom parameters of the stream, sent in ``start``.
            encoding: The stream's codec, both ways: ``PCMU`` (the default),
                ``PCMA`` or ``L16`` (16-bit little-endian PCM).
            sample_rate: 8000, or 16000 for ``L16``.

        Raises:
            ValueError: For an encoding or rate Telnyx does not stream.
        """
        super().__init__()
        codec = ENCODINGS.get((encoding.upper(), int(sample_rate)))
        if codec is None:
            offered = ", ".join(f"{e} {r}" for e, r in ENCODINGS)
            raise ValueError(f"Telnyx streams {offered}; not {encoding} at {sample_rate} Hz")
        self.codec = codec
        self.stream_id = stream_id or str(uuid.uuid4())
        self.call_control_id = call_control_id or telnyx_call_control_id()
        self.call_session_id = call_session_id or str(uuid.uuid4())
        self.user_id = user_id or str(uuid.uuid4())
        self.from_number = from_number or random_number()
        self.to_number = to_number or random_number()
        self.client_state = client_state
        self.custom_parameters = dict(custom_parameters or {})

    def opening_messages(self) -> list[str | bytes]:
        """``connected`` then ``start``."""
        connected = json.dumps({"event": "connected", "version": "1.0.0"})
        start: dict = {
            "user_id": self.user_id,
            "call_control_id": self.call_control_id,
            "call_session_id": self.call_session_id,
            "from": self.from_number,
            "to": self.to_number,
        }
        if self.client_state is not None:
            start["client_state"] = self.client_state
        start["custom_parameters"] = self.custom_parameters
        start["media_format"] = {
            "encoding": self.codec.name,
            "sample_rate": self.codec.sample_rate,
            "channels": 1,
        }
        return [connected, self._message("start", start=start)]

    def violation_reply(self, violation: Violation) -> str | None:
        """Telnyx's ``error`` event, as it answers a frame it cannot use."""
        return telnyx_error(violation)

    @property
    def carrier_rate(self) -> int:
        """The stream's rate (16 kHz only for L16 at 16000)."""
        return self.codec.sample_rate

    def encode_payload(self, pcm: bytes) -> bytes:
        """Caller audio in the stream's encoding."""
        return self.codec.encode(pcm)

    def decode_payload(self, data: bytes) -> bytes:
        """The bot's audio in the stream's encoding, to 16-bit PCM."""
        return self.codec.decode(data)

    def dtmf_message(self, digit: str) -> str | None:
        """Telnyx's ``dtmf`` frame."""
        occurred_at = datetime.datetime.now(datetime.UTC).isoformat()
        return self._message(
            "dtmf", occurred_at=occurred_at.replace("+00:00", "Z"), dtmf={"digit": digit}
        )

    def stop_message(self) -> str | None:
        """Telnyx's ``stop`` frame when the call ends."""
        return self._message(
            "stop", stop={"user_id": self.user_id, "call_control_id": self.call_control_id}
        )
