#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Sample rate conversion (pure, no I/O): one-shot, and streaming with soxr or a low-delay filter.

Audio is 16-bit little-endian mono PCM unless a name says ``float``. A whole
clip is converted at once with soxr (the only module of the package that
imports it)::

    pcm_16k = resample(pcm_8k, 8000, 16000)

Audio that arrives in pieces goes through one :class:`StreamResampler` per
stream, whose :meth:`~StreamResampler.flush` returns what its filter still
holds at the end::

    resampler = StreamResampler(8000, 16000, low_delay=True)
    out = b"".join(resampler.resample(chunk) for chunk in chunks) + resampler.flush()

The one-shot functions and the default stream use soxr's ``HQ`` quality. A
one-shot conversion of ``n`` samples gives ``n * to_rate / from_rate`` of
them, rounded to the nearest (halves up); a stream, once flushed, gives as
many (the soxr stream: each within 2 of the one-shot's value, 16-bit rounding).

Low delay, for live calls (``low_delay=True``, what the protocols use).
soxr's stream filters work in blocks: fed 20 ms pieces, they return nothing
for several pieces, then a lump. Measured (``bench/resampler.py``, soxr
1.0, 20 ms pieces; audio held back after a piece, median / most, 8 -> 16
kHz): ``VHQ`` (Pipecat's stream resampler) 64 / 111 ms (24 -> 8 kHz: 85 /
153 ms), ``HQ`` 63 / 115 ms, ``MQ`` 62 / 118 ms, ``LQ`` 33 / 61 ms (and -7.9
dB at 3.4 kHz), ``HQ`` with soxr's minimum phase 53 / 104 ms; only ``QQ``
(cubic interpolation: -3.5 dB at 3.4 kHz up, no anti-alias filter down)
holds under 1 ms. The low-delay stream is a linear-phase polyphase FIR
filter (a Kaiser-windowed sinc, numpy) whose output is computed as soon as
its input has arrived: it holds back :attr:`StreamResampler.delay_secs` of
input, 4.2 ms when either rate is 8 kHz (2.1 ms between 16 and 24 kHz), so
each 20 ms piece gives 20 ms, the first 20 ms less that (a live user pads
that first piece with silence: :class:`pipecat_wsclient.protocols.audio.Resampler`). Its passband is
flat to 0.85 of the lower Nyquist frequency (3.4 kHz at 8 kHz: 0.00 dB from
300 Hz to 3.4 kHz, -1.6 dB at 3.6 kHz, -6 dB at 3.7 kHz); what would alias
or image is 89 to 97 dB down (soxr ``HQ``: 120 to 127); a 1 kHz tone
through it differs from soxr ``HQ``'s one-shot conversion by 83 dB under the
tone (the 16-bit rounding). It costs 11 to 12 µs per 20 ms piece (8 <-> 16,
24 kHz; soxr's stream 4 to 6). Once flushed it gives as many samples as the
one-shot conversion. Rates whose ratio would need more than
:data:`MAX_FILTER_TAPS` taps use the soxr stream.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import soxr

QUALITY = "HQ"
"""soxr's quality preset for every soxr conversion here (its default)."""

LOW_DELAY_PASSBAND = 0.85
"""The low-delay filter passes up to this fraction of the lower Nyquist frequency."""

LOW_DELAY_ATTENUATION_DB = 80.0
"""The low-delay filter's stopband attenuation (from the lower Nyquist frequency up)."""

MAX_FILTER_TAPS = 200_000
"""The most taps a low-delay filter may have; rates needing more use the soxr stream."""

MAX_PHASES = 8
"""Up to this many phases the low-delay filter takes every window by every phase
(one matrix product); with more (44.1 kHz and other odd ratios) it gathers a
window and a phase per output sample."""


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
    exchange it holds back its delay, which :meth:`flush` returns at the end
    of the stream. Equal rates pass audio through untouched. Pieces may end
    inside a sample: the odd byte waits for the next piece.

    Example::

        resampler = StreamResampler(8000, 16000, low_delay=True)
        pcm_16k = resampler.resample(frame_8k)  # 20 ms in, 20 ms out (less, the first time)
        tail = resampler.flush()                # at the end: the last delay_secs
    """

    def __init__(self, from_rate: int, to_rate: int, *, low_delay: bool = False):
        """Initialize the resampler.

        Args:
            from_rate: The sample rate of the audio fed in.
            to_rate: The sample rate of the audio returned.
            low_delay: Use the low-delay filter (see the module's docstring)
                instead of soxr's ``HQ`` stream, which returns audio in lumps
                of up to about 100 ms.
        """
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._odd_byte = b""
        self._stream: soxr.ResampleStream | None = None
        self._filter: _LowDelayFilter | None = None
        if from_rate == to_rate:
            return
        design = _design(from_rate, to_rate) if low_delay else None
        if design is not None:
            self._filter = _LowDelayFilter(design)
        else:
            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, "int16", quality=QUALITY)

    @property
    def delay_secs(self) -> float | None:
        """How much input the low-delay filter holds back (0 for equal rates, None for soxr's)."""
        if self._filter is not None:
            return self._filter.design.half_taps / self.from_rate
        return 0.0 if self._stream is None else None

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
        if not data:
            return b""
        samples = np.frombuffer(data, "<i2")
        if self._filter is not None:
            return _to_pcm(self._filter.process(samples))
        if self._stream is None:
            return bytes(data)
        return self._stream.resample_chunk(samples).astype("<i2").tobytes()

    def flush(self) -> bytes:
        """End the stream: what the filter still holds, then a fresh start.

        Returns:
            The rest of the stream's audio at :attr:`to_rate` (``b""`` when
            nothing is held). The next :meth:`resample` starts a new stream.
        """
        self._odd_byte = b""
        if self._filter is not None:
            return _to_pcm(self._filter.flush())
        if self._stream is None:
            return b""
        tail = self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
        self._stream.clear()
        return tail.astype("<i2").tobytes()


def _to_pcm(samples: np.ndarray) -> bytes:
    """Float samples to 16-bit PCM: rounded to the nearest, clipped (in place)."""
    np.rint(samples, out=samples)
    np.minimum(samples, 32767, out=samples)  # faster than np.clip for a frame's worth
    np.maximum(samples, -32768, out=samples)
    return samples.astype("<i2").tobytes()


class _Design:
    """A polyphase low-pass filter for ``from_rate -> to_rate`` (``to/from = up/down``).

    Output sample ``n`` lies at input position ``n * down / up``: input sample
    ``i = n * down // up`` in phase ``p = n * down % up``, and is the dot
    product of the input ``x[i - half_taps : i + half_taps + 1]`` with
    ``phases[p]`` (whose taps are the prototype's ``h[p + up * q]``, reversed).
    """

    def __init__(self, from_rate: int, to_rate: int, up: int, down: int, half_taps: int):
        self.up = up
        self.down = down
        self.half_taps = half_taps
        # The prototype: a Kaiser-windowed sinc at up * from_rate, centred on
        # tap up * half_taps (an integer delay), cutting off halfway through
        # the transition band, with gain `up` (zero stuffing divides by it).
        nyquist = min(from_rate, to_rate) / 2
        cutoff = (1 + LOW_DELAY_PASSBAND) / 2 * nyquist / (up * from_rate)
        length = 2 * up * half_taps + 1
        beta = 0.1102 * (LOW_DELAY_ATTENUATION_DB - 8.7)
        offsets = np.arange(length) - up * half_taps
        prototype = 2 * cutoff * np.sinc(2 * cutoff * offsets) * np.kaiser(length, beta) * up
        taps = 2 * half_taps + 1
        phases = np.zeros((up, taps))
        for p in range(up):
            column = prototype[p::up]
            phases[p, taps - len(column) :] = column[::-1]
        self.phases = phases.astype(np.float32)
        self.phases_t = np.ascontiguousarray(self.phases.T)


@lru_cache(maxsize=64)
def _design(from_rate: int, to_rate: int) -> _Design | None:
    """The low-delay filter for these rates (shared by every stream), None if too long."""
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    width = (1 - LOW_DELAY_PASSBAND) * min(from_rate, to_rate) / 2
    # Kaiser's estimate of the length for this attenuation and transition width.
    length = (LOW_DELAY_ATTENUATION_DB - 7.95) / (14.36 * width / (up * from_rate)) + 1
    half_taps = max(1, math.ceil((length - 1) / (2 * up)))
    if up * (2 * half_taps + 1) > MAX_FILTER_TAPS:
        return None
    return _Design(from_rate, to_rate, up, down, half_taps)


class _LowDelayFilter:
    """One stream through a :class:`_Design`: output as soon as its input has arrived."""

    def __init__(self, design: _Design):
        self.design = design
        self._start()

    def _start(self) -> None:
        half = self.design.half_taps
        self._buf = np.zeros(half, np.float32)  # the input from index _base on (silence before 0)
        self._base = -half
        self._next = 0  # the next output sample to compute

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The output that the input so far makes computable (float samples)."""
        d = self.design
        buf = np.concatenate((self._buf, samples))
        received = self._base + len(buf)
        # Output n needs input up to n * down // up + half_taps.
        last = received - 1 - d.half_taps
        end = -(-(last + 1) * d.up // d.down) if last >= 0 else 0
        return self._emit(buf, max(end, self._next))

    def flush(self) -> np.ndarray:
        """The rest of the output (silence taken after the input's end), then a new stream."""
        d = self.design
        received = self._base + len(self._buf)
        total = (2 * received * d.up + d.down) // (2 * d.down)  # the one-shot's count
        buf = self._buf
        if total > self._next:
            needed = (total - 1) * d.down // d.up + d.half_taps + 1
            buf = np.concatenate((buf, np.zeros(max(0, needed - received), np.float32)))
        out = self._emit(buf, max(total, self._next))
        self._start()
        return out

    def _emit(self, buf: np.ndarray, end: int) -> np.ndarray:
        """Output samples ``self._next`` to ``end``; keep the input that later ones need."""
        d = self.design
        first, count = self._next, end - self._next
        if count > 0:
            out = self._compute(buf, first, end)
        else:
            out = np.zeros(0, np.float32)
        self._next = end
        keep = end * d.down // d.up - d.half_taps
        self._buf = buf[keep - self._base :]
        self._base = keep
        return out

    def _compute(self, buf: np.ndarray, first: int, end: int) -> np.ndarray:
        """Output samples ``first`` to ``end`` (``buf`` holds their windows)."""
        d = self.design
        taps = 2 * d.half_taps + 1
        item = buf.itemsize
        i0 = first * d.down // d.up  # the first output's window, in input samples
        offset = (i0 - d.half_taps - self._base) * item

        def windows(rows: int, step: int) -> np.ndarray:
            # rows windows of the input, `step` samples apart (a view, no copy)
            return np.ndarray((rows, taps), buf.dtype, buf, offset, (step * item, item))

        if d.down == 1:
            # Whole periods of `up` outputs (8 -> 16, 24 kHz): one window each.
            return np.dot(windows((end - first) // d.up, 1), d.phases_t).ravel()
        if d.up == 1:
            # Decimation (16, 24 -> 8 kHz): one window every `down` samples.
            return np.dot(windows(end - first, d.down), d.phases[0])
        inputs, phases = np.divmod(np.arange(first, end) * d.down, d.up)
        if d.up <= MAX_PHASES:
            # Few phases (16 <-> 24 kHz): every window by every phase, then pick.
            every = np.dot(windows(int(inputs[-1]) - i0 + 1, 1), d.phases_t)
            return every[inputs - i0, phases]
        # Many phases (44.1 kHz and the like): a window and a phase per output.
        rows = buf[(inputs - d.half_taps - self._base)[:, None] + np.arange(taps)]
        return np.einsum("ij,ij->i", rows, d.phases[phases])
