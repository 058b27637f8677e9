#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Sample rate conversion (soxr, pure, no I/O): the only module of the package that imports soxr.

Audio is 16-bit little-endian mono PCM unless a name says ``float``. A whole
clip is converted at once::

    pcm_16k = resample(pcm_8k, 8000, 16000)

Audio that arrives in pieces goes through one :class:`StreamResampler` per
stream, whose :meth:`~StreamResampler.flush` returns what its filter still
holds at the end::

    resampler = StreamResampler(8000, 16000)
    out = b"".join(resampler.resample(chunk) for chunk in chunks) + resampler.flush()

Both use soxr's ``HQ`` quality. A one-shot conversion of ``n`` samples gives
``n * to_rate / from_rate`` of them, rounded to the nearest (halves up); a
stream, once flushed, gives as many, each within 2 of the one-shot's value
(16-bit rounding).
"""

from __future__ import annotations

import numpy as np
import soxr

QUALITY = "HQ"
"""soxr's quality preset for every conversion here (its default)."""


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Convert a whole clip of 16-bit mono PCM to another sample rate.

    Args:
        pcm: 16-bit mono PCM; an odd last byte is dropped.
        from_rate: Its sample rate.
        to_rate: The sample rate wanted.

    Returns:
        16-bit mono PCM at ``to_rate`` (``pcm`` itself, whole samples only,
        when the rates are equal; ``b""`` for no audio).
    """
    pcm = pcm[: len(pcm) // 2 * 2]
    if from_rate == to_rate or not pcm:
        return bytes(pcm)
    samples = np.frombuffer(pcm, "<i2")
    return soxr.resample(samples, from_rate, to_rate, quality=QUALITY).astype("<i2").tobytes()


def resample_float(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Convert a whole clip of float mono samples to another sample rate.

    Args:
        samples: Mono samples (float32 or float64, full scale 1).
        from_rate: Their sample rate.
        to_rate: The sample rate wanted.

    Returns:
        The samples at ``to_rate``, of the same dtype (``samples`` itself when
        the rates are equal or there are none).
    """
    if from_rate == to_rate or not len(samples):
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality=QUALITY)


class StreamResampler:
    """Converts one stream of 16-bit mono PCM, piece by piece, to another sample rate.

    The filter keeps history across pieces, so the joins make no clicks; in
    exchange it holds back its delay (a few milliseconds), which
    :meth:`flush` returns at the end of the stream. Equal rates pass audio
    through untouched. Pieces may end inside a sample: the odd byte waits for
    the next piece.
    """

    def __init__(self, from_rate: int, to_rate: int):
        """Initialize the resampler.

        Args:
            from_rate: The sample rate of the audio fed in.
            to_rate: The sample rate of the audio returned.
        """
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._odd_byte = b""
        self._stream: soxr.ResampleStream | None = None
        if from_rate != to_rate:
            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, "int16", quality=QUALITY)

    def resample(self, pcm: bytes) -> bytes:
        """Convert the next piece of the stream.

        Args:
            pcm: 16-bit mono PCM at :attr:`from_rate`.

        Returns:
            16-bit mono PCM at :attr:`to_rate`: as much as the filter lets out
            so far (possibly ``b""``).
        """
        data = self._odd_byte + pcm
        whole = len(data) // 2 * 2
        self._odd_byte, data = data[whole:], data[:whole]
        if self._stream is None or not data:
            return bytes(data)
        return self._stream.resample_chunk(np.frombuffer(data, "<i2")).astype("<i2").tobytes()

    def flush(self) -> bytes:
        """End the stream: what the filter still holds, then a fresh start.

        Returns:
            The rest of the stream's audio at :attr:`to_rate` (``b""`` when
            nothing is held). The next :meth:`resample` starts a new stream.
        """
        self._odd_byte = b""
        if self._stream is None:
            return b""
        tail = self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
        self._stream.clear()
        return tail.astype("<i2").tobytes()
