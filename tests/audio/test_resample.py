"""Sample rate conversion (audio.resample): one-shot, float, and streaming, on synthetic PCM.

A sine's frequency must survive the conversion (measured at the spectrum's
peak), a clip must come out ``round(n * to / from)`` samples long, and a
stream fed in uneven pieces (odd bytes included) and flushed must give what
the one-shot conversion gives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipecat_wsclient.audio.resample import StreamResampler, resample, resample_float

RATE_PAIRS = [(8000, 16000), (16000, 8000), (22050, 8000), (24000, 16000), (44100, 16000)]


def sine(rate: int, secs: float, hz: float = 440.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(rate * secs)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def peak_hz(pcm: bytes, rate: int) -> float:
    x = samples(pcm) * np.hanning(len(pcm) // 2)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(x))


def stream(resampler: StreamResampler, pcm: bytes, sizes: list[int]) -> bytes:
    out, i, k = [], 0, 0
    while i < len(pcm):
        size = sizes[k % len(sizes)]
        out.append(resampler.resample(pcm[i : i + size]))
        i, k = i + size, k + 1
    return b"".join(out) + resampler.flush()


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_one_shot_length_is_the_rate_ratio(from_rate: int, to_rate: int) -> None:
    for n in (from_rate + 37, from_rate + 1, 1):  # not whole numbers of output samples
        out = resample(sine(from_rate, n / from_rate), from_rate, to_rate)
        assert len(out) % 2 == 0
        assert len(out) // 2 == math.floor(n * to_rate / from_rate + 0.5)  # halves up


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_a_sine_keeps_its_frequency_and_level(from_rate: int, to_rate: int) -> None:
    hz = 1000.0  # under every Nyquist frequency here
    out = resample(sine(from_rate, 1.0, hz), from_rate, to_rate)
    assert peak_hz(out, to_rate) == pytest.approx(hz, abs=2.0)
    middle = samples(out)[to_rate // 10 : -to_rate // 10]  # the filter's edges aside
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.01)


def test_frequencies_above_the_new_nyquist_are_removed() -> None:
    out = resample(sine(16000, 1.0, 6000.0), 16000, 8000)  # 6 kHz cannot exist at 8 kHz
    assert np.sqrt(np.mean(samples(out) ** 2)) < 0.01 * 0.5 * 32767


def test_float_variant_matches_the_pcm_one() -> None:
    pcm = sine(44100, 0.5)
    floats = samples(pcm).astype(np.float32) / 32768
    out = resample_float(floats, 44100, 16000)
    assert out.dtype == np.float32
    assert len(out) == len(resample(pcm, 44100, 16000)) // 2
    assert np.max(np.abs(out * 32768 - samples(resample(pcm, 44100, 16000)))) <= 2


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_streaming_equals_one_shot(from_rate: int, to_rate: int) -> None:
    pcm = sine(from_rate, 1.3, 700.0)
    whole = samples(resample(pcm, from_rate, to_rate))
    # Uneven pieces, some ending inside a sample.
    streamed = samples(stream(StreamResampler(from_rate, to_rate), pcm, [321, 1, 640, 77, 2000]))
    assert len(streamed) == len(whole)
    assert np.max(np.abs(streamed - whole)) <= 2  # rounding of 16-bit samples


def test_flush_returns_the_tail_and_starts_a_new_stream() -> None:
    pcm = sine(8000, 0.5)
    resampler = StreamResampler(8000, 16000)
    body = resampler.resample(pcm)
    tail = resampler.flush()
    assert body and tail  # the filter held some back
    assert (len(body) + len(tail)) // 2 == 8000
    assert resampler.flush() == b""  # nothing held any more
    again = samples(resampler.resample(pcm) + resampler.flush())  # a fresh stream
    assert len(again) == 8000
    assert np.max(np.abs(again - samples(body + tail))) <= 2


def test_flush_without_audio_is_empty() -> None:
    assert StreamResampler(8000, 16000).flush() == b""


def test_empty_input() -> None:
    assert resample(b"", 8000, 16000) == b""
    assert resample(b"\x01", 8000, 16000) == b""  # half a sample is no sample
    assert len(resample_float(np.zeros(0, np.float32), 8000, 16000)) == 0
    resampler = StreamResampler(8000, 16000)
    assert resampler.resample(b"") == b""
    assert resampler.flush() == b""


def test_same_rate_passes_through() -> None:
    pcm = sine(16000, 0.1)
    assert resample(pcm, 16000, 16000) == pcm
    assert resample(pcm + b"\x07", 16000, 16000) == pcm  # an odd last byte dropped
    floats = np.linspace(-1, 1, 100, dtype=np.float32)
    assert resample_float(floats, 16000, 16000) is floats
    resampler = StreamResampler(16000, 16000)
    assert resampler.resample(pcm[:3]) + resampler.resample(pcm[3:]) == pcm
    assert resampler.flush() == b""
