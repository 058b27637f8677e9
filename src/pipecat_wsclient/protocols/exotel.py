#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Exotel's side of a Voicebot applet stream: call an Exotel phone bot without Exotel.

Messages as documented in Exotel's AgentStream "WebSocket protocol" reference
and "Working with the Stream and Voicebot Applet": ``connected``, then
``start`` (``stream_sid``, ``call_sid``, ``account_sid``, ``from``, ``to``,
``custom_parameters``, ``media_format``), then ``media`` with base64 16-bit
little-endian mono PCM ("raw/slin", 8 kHz by default) in chunks that are a
multiple of 320 bytes (``chunk``, ``timestamp`` in ms), ``dtmf`` (``digit``,
``duration``), ``mark`` echoes and ``stop`` (``reason``); every message but
``connected`` carries a ``sequence_number`` and the ``stream_sid``, and all
numbers are strings. From the bot: ``media``, ``mark`` and ``clear``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pipecat_wsclient.protocols.json_carrier import JsonCarrierSerializer

EXOTEL_SAMPLE_RATES = (8000, 16000, 24000)
"""Rates the Voicebot applet streams at (``?sample-rate=`` on the bot's URL; 8000 by default)."""

EXOTEL_CHUNK_BYTES = 320
"""Exotel's audio chunks are multiples of 320 bytes (20 ms of 16-bit PCM at 8 kHz)."""


def exotel_sid() -> str:
    """A random id in the shape of Exotel's call and stream ids: 32 hex digits."""
    return secrets.token_hex(16)


class ExotelCarrierSerializer(JsonCarrierSerializer):
    """Play Exotel's side of a Voicebot applet stream (the bot under test is the server).

    Used as the transport's serializer (example: :class:`.CarrierSerializer`).
    """

    carrier_name = "exotel"

    sequence_key = "sequence_number"
    stream_key = "stream_sid"
    stream_attr = "stream_sid"
    stream_key_first = True

    def __init__(
        self,
        *,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str = "wsclient",
        from_number: str = "+910000000001",
        to_number: str = "+910000000002",
        custom_parameters: dict[str, str] | None = None,
        sample_rate: int = 8000,
        chunk_ms: int = 100,
        dtmf_duration_ms: int = 100,
        stop_reason: str = "callended",
        media_format: dict[str, str] | None = None,
    ):
        """Initialize the serializer.

        Args:
            stream_sid: The stream id; random if not given.
            call_sid: The call id; random if not given.
            account_sid: The account id (Exotel's is the account name).
            from_number: The caller's number, sent as ``from``.
            to_number: The number called (the ExoPhone), sent as ``to``.
            custom_parameters: The applet URL's custom parameters, sent as
                ``custom_parameters`` in ``start``.
            sample_rate: 8000 (Exotel's default), 16000 or 24000; the bot must
                expect the same rate (Pipecat's ``exotel_sample_rate``).
            chunk_ms: Caller audio per ``media`` message, a multiple of 20 ms
                (so that chunks are multiples of 320 bytes); 100 by default,
                about what Exotel sends.
            dtmf_duration_ms: The ``duration`` reported in ``dtmf`` events.
            stop_reason: The ``reason`` in ``stop`` when the caller hangs up.
            media_format: Overrides ``start.media_format`` (default: the
                documented ``audio/x-raw``, rate, ``bit_rate`` 16).

        Raises:
            ValueError: If the rate or the chunk size is not one Exotel uses.
        """
        if sample_rate not in EXOTEL_SAMPLE_RATES:
            raise ValueError(f"Exotel streams at {EXOTEL_SAMPLE_RATES} Hz, not {sample_rate}")
        if chunk_ms <= 0 or chunk_ms % 20:
            raise ValueError(f"chunk_ms must be a multiple of 20 (320-byte chunks), not {chunk_ms}")
        super().__init__(chunk_ms=chunk_ms)
        self.stream_sid = stream_sid or exotel_sid()
        self.call_sid = call_sid or exotel_sid()
        self.account_sid = account_sid
        self.from_number = from_number
        self.to_number = to_number
        self.custom_parameters = dict(custom_parameters or {})
        self.sample_rate = sample_rate
        self.dtmf_duration_ms = dtmf_duration_ms
        self.stop_reason = stop_reason
        self.media_format = media_format or {
            "encoding": "audio/x-raw",
            "sample_rate": str(sample_rate),
            "bit_rate": "16",
        }

    @property
    def carrier_rate(self) -> int:
        """The stream's rate (8 kHz unless configured otherwise)."""
        return self.sample_rate

    @property
    def chunk_bytes(self) -> int:
        """Bytes of PCM in each ``media`` message."""
        return 2 * self.sample_rate * self._chunk_ms // 1000

    def opening_messages(self) -> list[str | bytes]:
        """``connected`` (no sequence number) then ``start``."""
        connected = json.dumps({"event": "connected"})
        start = self._message(
            "start",
            start={
                "stream_sid": self.stream_sid,
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "from": self.from_number,
                "to": self.to_number,
                "custom_parameters": self.custom_parameters,
                "media_format": self.media_format,
            },
        )
        return [connected, start]

    def _media_fields(self, chunk: int, payload: str) -> dict[str, Any]:
        """The chunk number, the stream time it reaches (ms) and the PCM."""
        timestamp = str(chunk * self._chunk_ms)
        return {"media": {"chunk": str(chunk), "timestamp": timestamp, "payload": payload}}

    def encode_payload(self, pcm: bytes) -> bytes:
        """Exotel streams 16-bit PCM as it is."""
        return pcm

    def decode_payload(self, data: bytes) -> bytes:
        """The bot's audio is 16-bit PCM as it is."""
        return data

    def dtmf_message(self, digit: str) -> str | None:
        """Exotel's ``dtmf`` event (Voicebot applet only)."""
        return self._message("dtmf", dtmf={"digit": digit, "duration": str(self.dtmf_duration_ms)})

    def stop_message(self) -> str | None:
        """Exotel's ``stop`` event when the call ends."""
        return self._message(
            "stop",
            stop={
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "reason": self.stop_reason,
            },
        )
