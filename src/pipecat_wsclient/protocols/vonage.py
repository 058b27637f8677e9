#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Vonage's side of a Voice API WebSocket: call a Vonage phone bot without Vonage.

Messages as documented in Vonage's "WebSockets in the Vonage Voice API"
guide: the first message is text, ``{"event": "websocket:connected",
"content-type": "audio/l16;rate=16000"}`` plus, at the top level, the
``headers`` of the NCCO ``connect`` endpoint; then the caller's audio as
*binary* messages of raw 16-bit little-endian mono PCM, 20 ms each (640
bytes at 16 kHz, 320 at 8 kHz), and DTMF as text ``{"event":
"websocket:dtmf", "digit": "5", "duration": 260}`` between them. From the
bot: binary audio in the same format, ``{"action": "clear"}`` (answered
with ``{"event": "websocket:cleared"}``) and ``{"action": "notify",
"payload": {...}}`` (answered with ``{"event": "websocket:notify",
"payload": {...}}`` once the audio queued before it has played). Vonage
sends no hang-up message on the socket: the call ending closes it.
"""

from __future__ import annotations

import json
from typing import Any

from pipecat_wsclient import peer_json
from pipecat_wsclient.protocols.carrier import (
    BotEvent,
    CarrierSerializer,
    Clear,
    Mark,
    Media,
)

VONAGE_SAMPLE_RATES = (8000, 16000)
"""Rates of ``audio/l16;rate=...`` that Vonage documents for the Voice API WebSocket."""

VONAGE_FRAME_MS = 20
"""Vonage's audio messages hold 20 ms each."""

_RESERVED = ("event", "content-type")


def vonage_content_type(sample_rate: int) -> str:
    """The ``content-type`` of Vonage's L16 audio at ``sample_rate``."""
    return f"audio/l16;rate={sample_rate}"


class VonageCarrierSerializer(CarrierSerializer):
    """Play Vonage's side of a Voice API WebSocket (the bot under test is the server).

    Used as the transport's serializer (example: :class:`.CarrierSerializer`).
    """

    carrier_name = "vonage"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        headers: dict[str, Any] | None = None,
        dtmf_duration_ms: int = 260,
    ):
        """Initialize the serializer.

        Args:
            sample_rate: 16000 (``audio/l16;rate=16000``) or 8000; the bot must
                expect the same rate (Pipecat's ``vonage_sample_rate``).
            headers: The NCCO endpoint's ``headers`` (e.g. a call ``uuid`` or
                custom data); Vonage puts them at the top level of
                ``websocket:connected``.
            dtmf_duration_ms: The ``duration`` reported in ``websocket:dtmf``.

        Raises:
            ValueError: If the rate is not one Vonage streams at, or a header
                would replace ``event`` or ``content-type``.
        """
        if sample_rate not in VONAGE_SAMPLE_RATES:
            raise ValueError(f"Vonage streams L16 at {VONAGE_SAMPLE_RATES} Hz, not {sample_rate}")
        headers = dict(headers or {})
        clash = [key for key in _RESERVED if key in headers]
        if clash:
            raise ValueError(f"headers may not set {clash}: Vonage sends those itself")
        super().__init__(chunk_ms=VONAGE_FRAME_MS)
        self.sample_rate = sample_rate
        self.headers = headers
        self.dtmf_duration_ms = dtmf_duration_ms

    @property
    def carrier_rate(self) -> int:
        """The rate of the ``content-type`` (16 kHz unless configured otherwise)."""
        return self.sample_rate

    @property
    def content_type(self) -> str:
        """The ``content-type`` announced in ``websocket:connected``."""
        return vonage_content_type(self.sample_rate)

    @property
    def frame_bytes(self) -> int:
        """Bytes of PCM in each audio message (640 at 16 kHz, 320 at 8 kHz)."""
        return 2 * self.sample_rate * VONAGE_FRAME_MS // 1000

    def opening_messages(self) -> list[str | bytes]:
        """``websocket:connected`` with the audio format and the custom headers."""
        connected = {"event": "websocket:connected", "content-type": self.content_type}
        return [json.dumps({**connected, **self.headers})]

    async def encode_audio(self, pcm: bytes) -> str | bytes:
        """A binary message: 20 ms of raw L16 PCM, as is."""
        return pcm

    async def decode(self, data: str | bytes) -> BotEvent | None:
        """Binary audio, ``clear`` and ``notify`` from the bot.

        Raises:
            ValueError: If a text message is not JSON (or nests deeper than
                :data:`~pipecat_wsclient.peer_json.MAX_DEPTH`).
        """
        if isinstance(data, bytes):
            return Media(data, self.sample_rate) if data else None
        message = peer_json.loads(data)
        if not isinstance(message, dict):
            return None
        action = message.get("action")
        if action == "clear":
            return Clear()
        if action == "notify":
            return Mark(json.dumps(message.get("payload", {})))
        return None

    def mark_echo(self, name: str) -> str | None:
        """``websocket:notify`` with the payload of the ``notify`` it answers."""
        return json.dumps({"event": "websocket:notify", "payload": json.loads(name)})

    def cleared_message(self) -> str | None:
        """``websocket:cleared``: the playback buffer has been emptied."""
        return json.dumps({"event": "websocket:cleared"})

    def dtmf_message(self, digit: str) -> str | None:
        """Vonage's ``websocket:dtmf`` event (one digit per event)."""
        return json.dumps(
            {"event": "websocket:dtmf", "digit": digit, "duration": self.dtmf_duration_ms}
        )

    def stop_message(self) -> str | None:
        """None: Vonage sends nothing when the call ends, the socket just closes."""
        return None
