#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Twilio's side of a Media Stream: call a Twilio phone bot without Twilio.

Messages as documented in Twilio's "Media Streams - WebSocket Messages"
reference: ``connected``, then ``start`` (``streamSid``, ``callSid``,
``accountSid``, ``tracks``, ``mediaFormat``, ``customParameters``), then
``media`` with base64 mu-law 8 kHz in 20 ms chunks (``track``, ``chunk``,
``timestamp`` in ms), ``mark`` echoes, ``dtmf`` and ``stop``; every message
carries a ``sequenceNumber``. From the bot: ``media``, ``mark`` and ``clear``.
"""

from __future__ import annotations

import base64
import json
import secrets

from pipecat_wsclient.protocols.carrier import (
    BotEvent,
    CarrierSerializer,
    Clear,
    Mark,
    Media,
    mulaw_to_pcm,
    pcm_to_mulaw,
)


def twilio_sid(prefix: str) -> str:
    """A random id in Twilio's format: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class TwilioCarrierSerializer(CarrierSerializer):
    """Play Twilio's side of a Media Stream (the bot under test is the server).

    Example::

        WebsocketClientTransport(
            "ws://localhost:8765/ws",
            WebsocketClientParams(
                serializer=TwilioCarrierSerializer(custom_parameters={"user": "42"}),
                audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False,
            ),
        )
    """

    def __init__(
        self,
        *,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        tracks: list[str] | None = None,
    ):
        """Initialize the serializer.

        Args:
            stream_sid: The stream id (``MZ...``); random if not given.
            call_sid: The call id (``CA...``); random if not given.
            account_sid: The account id (``AC...``); random if not given.
            custom_parameters: ``<Parameter>`` values of the TwiML ``<Stream>``.
            tracks: Tracks announced in ``start`` (default ``["inbound"]``).
        """
        super().__init__(chunk_ms=20)
        self.stream_sid = stream_sid or twilio_sid("MZ")
        self.call_sid = call_sid or twilio_sid("CA")
        self.account_sid = account_sid or twilio_sid("AC")
        self.custom_parameters = dict(custom_parameters or {})
        self.tracks = tracks or ["inbound"]
        self._sequence = 0
        self._chunk = 0

    @property
    def carrier_rate(self) -> int:
        """Twilio streams 8 kHz."""
        return 8000

    def reset_stream(self) -> None:
        """Sequence numbers and chunks start over on a new stream."""
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def _message(self, event: str, **fields) -> str:
        return json.dumps(
            {"event": event, "sequenceNumber": self._next(), **fields, "streamSid": self.stream_sid}
        )

    def opening_messages(self) -> list[str | bytes]:
        """``connected`` then ``start``."""
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = self._message(
            "start",
            start={
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": self.tracks,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.custom_parameters,
            },
        )
        return [connected, start]

    async def encode_audio(self, pcm: bytes) -> str | bytes:
        """A ``media`` message: 20 ms of mu-law, with chunk number and timestamp."""
        self._chunk += 1
        return self._message(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(pcm_to_mulaw(pcm)).decode(),
            },
        )

    async def decode(self, data: str | bytes) -> BotEvent | None:
        """``media``, ``mark`` and ``clear`` from the bot."""
        message = json.loads(data)
        event = message.get("event")
        if event == "media":
            payload = base64.b64decode(message["media"]["payload"])
            return Media(mulaw_to_pcm(payload), 8000)
        if event == "mark":
            return Mark(str(message.get("mark", {}).get("name", "")))
        if event == "clear":
            return Clear()
        return None

    def mark_echo(self, name: str) -> str | None:
        """Twilio's ``mark`` event: the audio before the mark has played."""
        return self._message("mark", mark={"name": name})

    def dtmf_message(self, digit: str) -> str | None:
        """Twilio's ``dtmf`` event."""
        return self._message("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def stop_message(self) -> str | None:
        """Twilio's ``stop`` event when the call ends."""
        return self._message(
            "stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid}
        )
