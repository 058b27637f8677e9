#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Plivo's side of an Audio Stream: call a Plivo phone bot without Plivo.

Messages as documented in Plivo's "Audio Streaming Protocol Reference"
(plivo.com/docs/voice-agents/audio-streaming/concepts/audio-streaming-reference)
and "Stream Event Protocol" (plivo.com/docs/voice/audio-streaming/audio-streaming):
``start`` (``callId``, ``streamId``, ``accountId``, ``tracks``,
``mediaFormat``, with the ``<Stream extraHeaders>`` as ``extra_headers``),
then ``media`` with base64 audio in 20 ms chunks, in the stream's
``contentType`` (Plivo's default L16, or mu-law: :data:`STREAM_FORMATS`; ``track``,
``chunk``, ``timestamp`` in Unix milliseconds), ``dtmf``, ``playedStream``
when a checkpoint has played and ``clearedAudio`` after a clear; every
message carries a numeric ``sequenceNumber`` starting at 1. From the bot:
``playAudio`` (in mu-law at 8 kHz or L16 at 8 or 16 kHz, whatever the
stream's format: each message names its own), ``checkpoint`` and ``clearAudio``.
L16 is 16-bit signed little-endian PCM.

Plivo has no WebSocket message for the end of the call (stream status goes
to the ``statusCallbackUrl`` over HTTP): hanging up closes the socket. A
checkpoint is acknowledged only if the audio before it has played, so a
clear drops pending checkpoints without a ``playedStream``.
"""

from __future__ import annotations

import json
import secrets
import string
import time
import uuid
from typing import Any

from pipecat.frames.frames import Frame

from pipecat_wsclient.protocols.audio import AudioCodec
from pipecat_wsclient.protocols.carrier import BotEvent, Clear, Media
from pipecat_wsclient.protocols.json_carrier import JsonCarrierSerializer, decode_base64

CONTENT_TYPE = "audio/x-mulaw"
"""mu-law's ``contentType``."""

L16 = "audio/x-l16"
"""16-bit linear PCM's ``contentType``."""

STREAM_FORMATS = {
    "audio/x-mulaw;rate=8000": AudioCodec(CONTENT_TYPE, 8000, 1, "ulaw"),
    "audio/x-l16;rate=8000": AudioCodec(L16, 8000, 2, "slin"),
    "audio/x-l16;rate=16000": AudioCodec(L16, 16000, 2, "slin"),
}
"""The ``<Stream contentType>`` values Plivo offers, and their codecs."""


def stream_codec(content_type: str) -> AudioCodec:
    """The codec of a ``<Stream contentType>`` value (spaces and case ignored).

    Raises:
        ValueError: For a content type Plivo does not stream (the message lists them).
    """
    key = content_type.replace(" ", "").lower()
    if key not in STREAM_FORMATS:
        raise ValueError(f"Plivo streams {', '.join(STREAM_FORMATS)}; not {content_type!r}")
    return STREAM_FORMATS[key]


def plivo_account_id() -> str:
    """A random id in Plivo's account format: ``MA`` and 18 upper-case letters or digits."""
    alphabet = string.ascii_uppercase + string.digits
    return "MA" + "".join(secrets.choice(alphabet) for _ in range(18))


def extra_headers(values: dict[str, str]) -> str:
    """Render custom parameters as Plivo passes ``extraHeaders``: ``k1=v1;k2=v2``."""
    return ";".join(f"{key}={value}" for key, value in values.items())


class PlivoCarrierSerializer(JsonCarrierSerializer):
    """Play Plivo's side of an Audio Stream (the bot under test is the server).

    Used as the transport's serializer (example: :class:`.CarrierSerializer`).
    """

    carrier_name = "plivo"

    sequence_key = "sequenceNumber"
    sequence_as_text = False
    stream_key = "streamId"
    stream_attr = "stream_id"
    stream_key_first = True
    media_event = "playAudio"
    mark_event = "checkpoint"
    clear_event = "clearAudio"

    def __init__(
        self,
        *,
        stream_id: str | None = None,
        call_id: str | None = None,
        account_id: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        tracks: list[str] | None = None,
        content_type: str = "audio/x-mulaw;rate=8000",
    ):
        """Initialize the serializer.

        Args:
            stream_id: The stream id (a UUID); random if not given.
            call_id: The call id (a UUID); random if not given.
            account_id: The account id (``MA...``); random if not given.
            custom_parameters: The ``extraHeaders`` of the ``<Stream>`` element,
                sent as ``extra_headers`` (``k1=v1;k2=v2``).
            tracks: Tracks announced in ``start`` (default ``["inbound"]``).
            content_type: The ``<Stream contentType>``: mu-law at 8 kHz
                (what Pipecat's runner asks for) or L16 at 8 or 16 kHz.

        Raises:
            ValueError: For a content type Plivo does not stream.
        """
        super().__init__(chunk_ms=20)
        self.codec = stream_codec(content_type)
        self.stream_id = stream_id or str(uuid.uuid4())
        self.call_id = call_id or str(uuid.uuid4())
        self.account_id = account_id or plivo_account_id()
        self.custom_parameters = dict(custom_parameters or {})
        self.tracks = tracks or ["inbound"]
        self._start_ms = 0
        self._clearing = False

    @property
    def carrier_rate(self) -> int:
        """The stream's rate (8 kHz, or 16 kHz for L16 at 16000)."""
        return self.codec.sample_rate

    def encode_payload(self, pcm: bytes) -> bytes:
        """Caller audio in the stream's codec."""
        return self.codec.encode(pcm)

    @property
    def extra_headers(self) -> str:
        """The custom parameters as Plivo sends them."""
        return extra_headers(self.custom_parameters)

    def reset_stream(self) -> None:
        """Sequence numbers, chunks and the media clock start over on a new stream."""
        super().reset_stream()
        self._start_ms = int(time.time() * 1000)
        self._clearing = False

    def opening_messages(self) -> list[str | bytes]:
        """``start`` (Plivo sends no ``connected``)."""
        start = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "callId": self.call_id,
                "streamId": self.stream_id,
                "accountId": self.account_id,
                "tracks": self.tracks,
                "mediaFormat": {"encoding": self.codec.name, "sampleRate": self.carrier_rate},
            },
            "extra_headers": self.extra_headers,
        }
        return [json.dumps(start)]

    def _media_fields(self, chunk: int, payload: str) -> dict[str, Any]:
        """20 ms of mu-law with the chunk number and its Unix time, and the extra headers."""
        media = {
            "track": "inbound",
            "timestamp": str(self._start_ms + (chunk - 1) * 20),
            "chunk": chunk,
            "payload": payload,
        }
        return {"media": media, "extra_headers": self.extra_headers}

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """As the base does; checkpoints dropped by a clear are not acknowledged."""
        try:
            return await super().deserialize(data)
        finally:
            self._clearing = False

    async def decode(self, data: str | bytes) -> BotEvent | None:
        """``playAudio``, ``checkpoint`` and ``clearAudio`` from the bot.

        Raises:
            ValueError: If ``playAudio`` is not in the stream's format (mu-law 8 kHz).
        """
        event = await super().decode(data)
        if isinstance(event, Clear):
            self._clearing = True
        return event

    def _decode_media(self, media: dict[str, Any]) -> Media:
        """``playAudio`` in the format it names (mu-law 8 kHz, L16 8 or 16 kHz)."""
        content_type = media.get("contentType", self.codec.name)
        try:
            rate = int(media.get("sampleRate", self.carrier_rate))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"playAudio sampleRate {media.get('sampleRate')!r}") from None
        try:
            codec = stream_codec(f"{content_type};rate={rate}")
        except ValueError:
            raise ValueError(
                f"playAudio is {content_type} at {rate} Hz; Plivo plays {', '.join(STREAM_FORMATS)}"
            ) from None
        return Media(codec.decode(decode_base64(media.get("payload"))), codec.sample_rate)

    def _mark_name(self, message: dict[str, Any]) -> str:
        return str(message.get("name", ""))

    def mark_echo(self, name: str) -> str | None:
        """Plivo's ``playedStream``: the audio before the checkpoint has played."""
        if self._clearing:
            return None
        return self._message("playedStream", name=name)

    def cleared_message(self) -> str | None:
        """Plivo's ``clearedAudio`` acknowledgement."""
        return self._message("clearedAudio")

    def dtmf_message(self, digit: str) -> str | None:
        """Plivo's ``dtmf`` event."""
        return self._message(
            "dtmf",
            dtmf={"track": "inbound", "digit": digit, "timestamp": str(int(time.time() * 1000))},
            extra_headers=self.extra_headers,
        )

    def stop_message(self) -> str | None:
        """None: Plivo ends a stream by closing the socket (no ``stop`` message)."""
        return None
