#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio helpers shared by the protocols: G.711, resampling, fixed-size chunks.

G.711 uses the codec Pipecat uses (``pipecat.audio.utils.audioop``), the
resampler is Pipecat's stream resampler, and :class:`Chunker` keeps what
does not fill a whole chunk for the next call, as a carrier or Asterisk
wants whole frames on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pipecat.audio.utils import audioop, create_stream_resampler


def pcm_to_mulaw(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 mu-law (same rate), with the codec Pipecat uses."""
    return audioop.lin2ulaw(pcm, 2)


def mulaw_to_pcm(data: bytes) -> bytes:
    """G.711 mu-law to 16-bit PCM (same rate)."""
    return audioop.ulaw2lin(data, 2)


def pcm_to_alaw(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 A-law (same rate)."""
    return audioop.lin2alaw(pcm, 2)


def alaw_to_pcm(data: bytes) -> bytes:
    """G.711 A-law to 16-bit PCM (same rate)."""
    return audioop.alaw2lin(data, 2)


@dataclass(frozen=True)
class AudioCodec:
    """An audio format as it travels on the wire: G.711 or 16-bit signed linear.

    Attributes:
        name: The format's name (e.g. Asterisk's ``MEDIA_START format:``).
        sample_rate: Samples per second.
        sample_width: Bytes per sample on the wire (1 for G.711, 2 for slin).
        kind: ``"ulaw"``, ``"alaw"`` or ``"slin"`` (16-bit signed linear).
    """

    name: str
    sample_rate: int
    sample_width: int
    kind: Literal["ulaw", "alaw", "slin"]

    def encode(self, pcm: bytes) -> bytes:
        """16-bit PCM at :attr:`sample_rate` to the wire format."""
        if self.kind == "ulaw":
            return pcm_to_mulaw(pcm)
        if self.kind == "alaw":
            return pcm_to_alaw(pcm)
        return pcm

    def decode(self, data: bytes) -> bytes:
        """Wire format to 16-bit PCM at :attr:`sample_rate` (an odd last byte is dropped)."""
        if self.kind == "ulaw":
            return mulaw_to_pcm(data)
        if self.kind == "alaw":
            return alaw_to_pcm(data)
        return data[: len(data) // 2 * 2]

    def silence(self, nbytes: int) -> bytes:
        """``nbytes`` of silence in the wire format."""
        return self.encode(b"\x00\x00" * (nbytes // self.sample_width))

    def frame_bytes(self, ptime_ms: int) -> int:
        """Bytes of ``ptime_ms`` milliseconds of audio."""
        return self.sample_rate * ptime_ms // 1000 * self.sample_width


class Resampler:
    """Pipecat's stream resampler, skipped when the rates already match.

    Example::

        resampler = Resampler()
        pcm = await resampler.resample(pcm, 24000, 8000)
        rest = await resampler.flush()  # what the filter still holds, at the end
    """

    def __init__(self):
        """Initialize the resampler."""
        self._resampler = create_stream_resampler()
        self.pending = False
        """Whether audio went through the resampler since the last flush or reset."""

    async def resample(self, pcm: bytes, in_rate: int, out_rate: int) -> bytes:
        """16-bit PCM at ``in_rate`` to ``out_rate`` (as is if the rates match)."""
        if in_rate == out_rate:
            return pcm
        self.pending = True
        return await self._resampler.resample(pcm, in_rate, out_rate)

    async def flush(self) -> bytes:
        """What the resampler still holds (empty if nothing went through it)."""
        if not self.pending:
            return b""
        self.pending = False
        return await self._resampler.flush()

    def reset(self) -> None:
        """Forget what the resampler holds (a new stream, an interruption)."""
        self._resampler = create_stream_resampler()
        self.pending = False


def split(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one may be shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class Chunker:
    """Whole chunks of a fixed size; the remainder waits for the next call.

    Example::

        chunker = Chunker()
        whole = chunker.push(audio, 320)      # a multiple of 320 bytes
        last = chunker.pad(320, codec.silence)  # the remainder, padded, at the end
    """

    def __init__(self):
        """Initialize with nothing pending."""
        self._rest = b""

    def __len__(self) -> int:
        """Bytes waiting for a whole chunk."""
        return len(self._rest)

    def push(self, data: bytes, size: int) -> bytes:
        """Add ``data``; return the whole chunks of ``size`` bytes there now, joined."""
        data = self._rest + data
        whole = len(data) // size * size
        self._rest = data[whole:]
        return data[:whole]

    def pad(self, size: int, silence: Callable[[int], bytes]) -> bytes:
        """The remainder padded to ``size`` with ``silence(n)`` (empty if there is none)."""
        if not self._rest:
            return b""
        padded = self._rest + silence(size - len(self._rest))
        self._rest = b""
        return padded

    def clear(self) -> int:
        """Drop the remainder; return how many bytes were dropped."""
        dropped = len(self._rest)
        self._rest = b""
        return dropped
