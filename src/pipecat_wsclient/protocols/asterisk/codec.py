#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The formats chan_websocket can re-frame, and how its BINARY messages are cut (pure).

Sources ([WS-DOC], [WS-SRC]) are listed in ``docs/asterisk.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat_wsclient.protocols.audio import AudioCodec, split

MAX_MESSAGE_BYTES = 65500
"""Largest WebSocket message Asterisk accepts; bigger ones close the socket and
hang up [WS-DOC "Max Message Size and Flow Control"]. (res_http_websocket
closes with 1009 when header + payload exceed 65535 bytes.)"""


@dataclass(frozen=True)
class AsteriskCodec(AudioCodec):
    """A format chan_websocket can re-frame, as it travels in BINARY messages.

    Attributes:
        name: Asterisk's format name (``MEDIA_START format:``).
        sample_rate: Samples per second.
        sample_width: Bytes per sample on the wire (1 for G.711, 2 for slin).
        kind: ``"ulaw"``, ``"alaw"`` or ``"slin"`` (16-bit signed linear).
    """


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


def split_messages(data: bytes, frame_bytes: int) -> list[bytes]:
    """Whole frames in messages of at most :data:`MAX_MESSAGE_BYTES`.

    Media must be whole multiples of ``optimal_frame_size`` [WS-DOC "Media
    Transfer"] and no message larger than Asterisk accepts [WS-DOC "Max
    Message Size and Flow Control"].

    Args:
        data: Encoded audio, a whole number of frames.
        frame_bytes: The stream's ``optimal_frame_size``.
    """
    return split(data, MAX_MESSAGE_BYTES // frame_bytes * frame_bytes)
