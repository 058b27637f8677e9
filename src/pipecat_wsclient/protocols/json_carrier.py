#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The base of the JSON carriers (Twilio, Telnyx, Plivo, Exotel).

Their media streams are alike: every message is a JSON object with an
``event``, a sequence number and the stream's id; the caller's audio goes in
numbered ``media`` messages as base64; the bot sends its audio, marks and
clears back as events. :class:`JsonCarrierSerializer` does all of that; a
carrier names the envelope's fields (class attributes), the fields of its
``media`` message, and writes its opening, DTMF and stop messages.
"""

from __future__ import annotations

import base64
import json
from abc import abstractmethod
from typing import Any, ClassVar

from pipecat_wsclient import peer_json
from pipecat_wsclient.protocols.audio import mulaw_to_pcm, pcm_to_mulaw
from pipecat_wsclient.protocols.carrier import BotEvent, CarrierSerializer, Clear, Mark, Media


def decode_base64(payload: Any) -> bytes:
    """A media ``payload``: base64 text to bytes.

    Raises:
        ValueError: If it is not a string of base64.
    """
    if not isinstance(payload, str):
        raise ValueError(f"media payload is not base64 text: {type(payload).__name__}")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as e:  # binascii.Error
        raise ValueError(f"media payload is not valid base64: {e}") from e


class JsonCarrierSerializer(CarrierSerializer):
    """A carrier whose messages are numbered JSON events with base64 audio.

    Subclasses set the envelope (:attr:`sequence_key`, :attr:`stream_key`,
    :attr:`stream_attr` and, if they differ, the other class attributes),
    implement :meth:`_media_fields` and the opening, DTMF and stop messages.
    Audio is mu-law unless :meth:`encode_payload`/:meth:`decode_payload` say
    otherwise. Sequence numbers and chunks restart on every stream.

    Every message is ``{"event": ..., <sequence_key>: n, **fields,
    <stream_key>: id}`` (the id right after the sequence number if
    :attr:`stream_key_first`).
    """

    sequence_key: ClassVar[str]
    """The sequence number's field (``sequenceNumber``, ``sequence_number``)."""

    sequence_as_text: ClassVar[bool] = True
    """Whether the sequence number is written as a string."""

    stream_key: ClassVar[str]
    """The stream id's field (``streamSid``, ``stream_id``...)."""

    stream_attr: ClassVar[str]
    """The attribute of ours that holds the stream id (``stream_sid``, ``stream_id``)."""

    stream_key_first: ClassVar[bool] = False
    """Whether the stream id comes before the message's fields (else after them)."""

    media_event: ClassVar[str] = "media"
    """The bot's audio event."""

    mark_event: ClassVar[str] = "mark"
    """The bot's mark event."""

    clear_event: ClassVar[str] = "clear"
    """The bot's clear event."""

    def __init__(self, *, chunk_ms: int = 20):
        """Initialize the stream counters.

        Args:
            chunk_ms: Caller audio per ``media`` message, in milliseconds.
        """
        super().__init__(chunk_ms=chunk_ms)
        self._sequence = 0
        self._chunk = 0

    def reset_stream(self) -> None:
        """Sequence numbers and chunks start over on a new stream."""
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str | int:
        self._sequence += 1
        return str(self._sequence) if self.sequence_as_text else self._sequence

    def _message(self, event: str, **fields: Any) -> str:
        """A numbered message of the carrier, as JSON text."""
        head = {"event": event, self.sequence_key: self._next()}
        stream = {self.stream_key: getattr(self, self.stream_attr)}
        if self.stream_key_first:
            return json.dumps({**head, **stream, **fields})
        return json.dumps({**head, **fields, **stream})

    @abstractmethod
    def _media_fields(self, chunk: int, payload: str) -> dict[str, Any]:
        """The fields of the ``chunk``-th ``media`` message (``payload`` is base64)."""

    def encode_payload(self, pcm: bytes) -> bytes:
        """Caller audio (16-bit PCM) in the stream's codec: mu-law here."""
        return pcm_to_mulaw(pcm)

    def decode_payload(self, data: bytes) -> bytes:
        """The bot's audio in the stream's codec to 16-bit PCM: mu-law here."""
        return mulaw_to_pcm(data)

    async def encode_audio(self, pcm: bytes) -> str | bytes:
        """A numbered ``media`` message with the chunk as base64."""
        self._chunk += 1
        payload = base64.b64encode(self.encode_payload(pcm)).decode()
        return self._message("media", **self._media_fields(self._chunk, payload))

    async def decode(self, data: str | bytes) -> BotEvent | None:
        """The bot's audio, marks and clears (None for anything else).

        Raises:
            ValueError: If the message is not a JSON object (or nests deeper
                than :data:`~pipecat_wsclient.peer_json.MAX_DEPTH`), or its
                media has no base64 ``payload``.
        """
        message = peer_json.loads(data)
        if not isinstance(message, dict):
            raise ValueError(f"not a JSON object: {type(message).__name__}")
        event = message.get("event")
        if event == self.media_event:
            media = message.get("media")
            if not isinstance(media, dict):
                raise ValueError(f"{event} without a 'media' object")
            return self._decode_media(media)
        if event == self.mark_event:
            return Mark(self._mark_name(message))
        if event == self.clear_event:
            return Clear()
        return None

    def _decode_media(self, media: dict[str, Any]) -> Media:
        return Media(self.decode_payload(decode_base64(media.get("payload"))), self.carrier_rate)

    def _mark_name(self, message: dict[str, Any]) -> str:
        mark = message.get("mark")
        return str(mark.get("name", "")) if isinstance(mark, dict) else ""

    def mark_echo(self, name: str) -> str | None:
        """The ``mark`` event: the audio before the mark has played."""
        return self._message("mark", mark={"name": name})


class JsonMuLawStream(JsonCarrierSerializer):
    """Twilio-style JSON media streams (Twilio, Telnyx): base64 mu-law 8 kHz in ``media``.

    ``media`` carries ``track``, ``chunk`` and ``timestamp`` (ms since the
    stream started); the bot sends ``media``, ``mark`` and ``clear``.
    """

    def __init__(self):
        """Initialize the stream counters."""
        super().__init__(chunk_ms=20)

    @property
    def carrier_rate(self) -> int:
        """These carriers stream 8 kHz."""
        return 8000

    def _media_fields(self, chunk: int, payload: str) -> dict[str, Any]:
        return {
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str((chunk - 1) * 20),
                "payload": payload,
            }
        }
