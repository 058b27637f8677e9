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

import json
import secrets

from pipecat_wsclient.protocols.json_carrier import JsonMuLawStream


def twilio_sid(prefix: str) -> str:
    """A random id in Twilio's format: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class TwilioCarrierSerializer(JsonMuLawStream):
    """Play Twilio's side of a Media Stream (the bot under test is the server).

    Used as the transport's serializer (example: :class:`.CarrierSerializer`).
    """

    carrier_name = "twilio"

    sequence_key = "sequenceNumber"
    stream_key = "streamSid"
    stream_attr = "stream_sid"

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
        super().__init__()
        self.stream_sid = stream_sid or twilio_sid("MZ")
        self.call_sid = call_sid or twilio_sid("CA")
        self.account_sid = account_sid or twilio_sid("AC")
        self.custom_parameters = dict(custom_parameters or {})
        self.tracks = tracks or ["inbound"]

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

    def dtmf_message(self, digit: str) -> str | None:
        """Twilio's ``dtmf`` event."""
        return self._message("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def stop_message(self) -> str | None:
        """Twilio's ``stop`` event when the call ends."""
        return self._message(
            "stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid}
        )
