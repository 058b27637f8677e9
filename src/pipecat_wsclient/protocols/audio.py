#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio helpers shared by the protocols: G.711, resampling, fixed-size chunks.

G.711 uses the codec Pipecat uses (``pipecat.audio.utils.audioop``), the
resampler is the low-delay stream of :mod:`pipecat_wsclient.audio.resample`
(each 20 ms in gives 20 ms out; it holds back 4.2 ms at 8 kHz, where
Pipecat's stream resampler returned lumps of about 100 ms), and
:class:`Chunker` keeps what does not fill a whole chunk for the next call,
as a carrier or Asterisk wants whole frames on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pipecat.audio.utils import audioop

from pipecat_wsclient.audio.resample import StreamResampler


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
    """A low-delay stream resampler, skipped when the rates already match.

    One per direction of a call; a new stream starts when the rates change
    (the old stream's tail goes first if the output rate stays the same), and
    audio at the output rate already passes through after that tail. Each
    stream begins with the filter's delay of silence (4.2 ms at 8 kHz), so
    each piece in gives a piece of the same length out.

    Example::

        resampler = Resampler()
        pcm = await resampler.resample(pcm, 24000, 8000)
        rest = await resampler.flush()  # what the filter still holds, at the end
    """

    def __init__(self):
        """Initialize with no stream yet."""
        self._stream: StreamResampler | None = None
        self.pending = False
        """Whether audio went through the resampler since the last flush or reset."""

    async def resample(self, pcm: bytes, in_rate: int, out_rate: int) -> bytes:
        """16-bit PCM at ``in_rate`` to ``out_rate`` (as is if the rates match)."""
        stream, tail = self._stream, b""
        if stream is not None and (stream.from_rate, stream.to_rate) != (in_rate, out_rate):
            # Another stream: the old one's tail first, if it is at this output rate.
            if self.pending and stream.to_rate == out_rate:
                tail = stream.flush()
            self._stream = stream = None
            self.pending = False
        if in_rate == out_rate:
            return tail + pcm
        if stream is None:
            self._stream = stream = StreamResampler(in_rate, out_rate, low_delay=True)
        if not self.pending:
            # A new stream: its first piece comes out short by the filter's
            # delay. Silence in its place keeps every piece whole (20 ms in,
            # 20 ms out), so nothing downstream that regroups audio into
            # whole frames waits for the missing part for the rest of the call.
            tail += b"\x00\x00" * round((stream.delay_secs or 0.0) * out_rate)
        self.pending = True
        return tail + stream.resample(pcm)

    async def flush(self) -> bytes:
        """What the resampler still holds (empty if nothing went through it)."""
        if not self.pending or self._stream is None:
            return b""
        self.pending = False
        return self._stream.flush()

    def reset(self) -> None:
        """Forget what the resampler holds (a new stream, an interruption)."""
        self._stream = None
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
