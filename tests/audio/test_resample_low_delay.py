"""The low-delay stream resampler (audio.resample, ``low_delay=True``), on synthetic PCM.

Pure and synchronous: what it holds back (an impulse comes out in the piece
it went in, unless it is in the piece's last ``delay_secs``), that every 20 ms
piece gives 20 ms (no lumps), that a flushed stream gives the one-shot's
count, and its quality against soxr's ``HQ`` one-shot conversion: passband
gain, what would alias or image, and a tone's difference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipecat_wsclient.audio.resample import StreamResampler, resample

PAIRS = [(8000, 16000), (8000, 24000), (16000, 8000), (24000, 8000), (16000, 24000)]
ODD_PAIRS = [(44100, 16000), (22050, 8000), (48000, 8000), (8000, 48000)]
PIECE_SECS = 0.02


def tone(rate: int, secs: float, hz: float, amplitude: float = 10000.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(round(rate * secs)) / rate)


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def floats(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float64)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def stream(from_rate: int, to_rate: int, data: bytes, size: int) -> tuple[list[bytes], bytes]:
    """The output of each piece of ``size`` bytes, and the flushed tail."""
    resampler = StreamResampler(from_rate, to_rate, low_delay=True)
    outs = [resampler.resample(piece) for piece in pieces(data, size)]
    return outs, resampler.flush()


def level_db(samples: np.ndarray, hz: float, rate: int, amplitude: float = 10000.0) -> float:
    """The level of ``hz`` in the middle of ``samples`` (Hann window), in dB of ``amplitude``."""
    middle = samples[len(samples) // 5 : -len(samples) // 5]
    window = np.hanning(len(middle))  # a tone far away leaks in less than -150 dB
    t = np.arange(len(middle)) / rate
    found = abs(np.sum(middle * window * np.exp(-2j * np.pi * hz * t))) * 2 / window.sum()
    return 20 * math.log10(max(found, 1e-9) / amplitude)  # all rounded away: -200 dB


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS + ODD_PAIRS)
def test_each_20ms_piece_gives_20ms_after_the_first(from_rate: int, to_rate: int) -> None:
    noise = np.random.default_rng(1).standard_normal(from_rate) * 3000
    outs, tail = stream(from_rate, to_rate, pcm(noise), round(from_rate * PIECE_SECS) * 2)
    sizes = [len(out) // 2 for out in outs]
    per_piece = round(to_rate * PIECE_SECS)
    assert sizes[1:] == [per_piece] * (len(sizes) - 1)  # no lumps, no gaps
    resampler = StreamResampler(from_rate, to_rate, low_delay=True)
    delay = resampler.delay_secs
    assert delay is not None
    # The first piece gives all but what the filter holds back: its delay.
    assert sizes[0] == pytest.approx(per_piece - delay * to_rate, abs=1.5)
    assert sum(sizes) + len(tail) // 2 == to_rate  # flushed: the whole second


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_the_delay_is_a_few_milliseconds(from_rate: int, to_rate: int) -> None:
    delay = StreamResampler(from_rate, to_rate, low_delay=True).delay_secs
    assert delay is not None
    assert delay <= (0.005 if min(from_rate, to_rate) == 8000 else 0.0025), delay
    assert StreamResampler(from_rate, to_rate).delay_secs is None  # soxr's: in blocks
    assert StreamResampler(from_rate, from_rate, low_delay=True).delay_secs == 0.0


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS + ODD_PAIRS)
def test_an_impulse_comes_out_with_the_piece_it_came_in(from_rate: int, to_rate: int) -> None:
    """Fed 20 ms at a time, an impulse is out when its piece has gone in, at its own time."""
    piece = round(from_rate * PIECE_SECS)
    delay = StreamResampler(from_rate, to_rate, low_delay=True).delay_secs
    assert delay is not None
    held = math.ceil(delay * from_rate)
    for at in (10 * piece, 10 * piece + piece // 2, 11 * piece - held - 1):
        x = np.zeros(20 * piece)
        x[at] = 20000
        outs, _ = stream(from_rate, to_rate, pcm(x), piece * 2)
        sizes = np.cumsum([len(out) // 2 for out in outs])
        y = floats(b"".join(outs))
        peak = int(np.argmax(np.abs(y)))
        assert abs(peak / to_rate - at / from_rate) <= 1 / min(from_rate, to_rate)
        assert int(np.searchsorted(sizes, peak, side="right")) == 10  # out with piece 10
        assert y[peak] > 0.5 * 20000 * min(1, to_rate / from_rate)
    # In the piece's last `delay`, it waits for the next piece.
    x = np.zeros(20 * piece)
    x[11 * piece - 1] = 20000
    outs, _ = stream(from_rate, to_rate, pcm(x), piece * 2)
    sizes = np.cumsum([len(out) // 2 for out in outs])
    peak = int(np.argmax(np.abs(floats(b"".join(outs)))))
    assert int(np.searchsorted(sizes, peak, side="right")) == 11


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS + ODD_PAIRS)
def test_a_flushed_stream_gives_the_one_shot_count(from_rate: int, to_rate: int) -> None:
    for n in (from_rate + 37, from_rate + 1, 3, 1):
        data = pcm(tone(from_rate, n / from_rate, 440.0))
        resampler = StreamResampler(from_rate, to_rate, low_delay=True)
        sizes = [321, 1, 640, 77, 2000]  # uneven pieces, some ending inside a sample
        out, i, k = [], 0, 0
        while i < len(data):
            out.append(resampler.resample(data[i : i + sizes[k % len(sizes)]]))
            i, k = i + sizes[k % len(sizes)], k + 1
        total = len(b"".join(out) + resampler.flush()) // 2
        assert (
            total
            == math.floor(n * to_rate / from_rate + 0.5)
            == len(resample(data, from_rate, to_rate)) // 2
        )
        assert resampler.flush() == b""  # a new stream, nothing held


def test_uneven_pieces_give_what_one_piece_gives() -> None:
    data = pcm(np.random.default_rng(2).standard_normal(8000) * 3000)
    whole, whole_tail = stream(8000, 24000, data, len(data))
    uneven = StreamResampler(8000, 24000, low_delay=True)
    out, i = [], 0
    for k in range(10_000):
        size = (321, 1, 640, 77, 2000)[k % 5]
        if i >= len(data):
            break
        out.append(uneven.resample(data[i : i + size]))
        i += size
    a = floats(b"".join(whole) + whole_tail)
    b = floats(b"".join(out) + uneven.flush())
    assert len(a) == len(b)
    assert np.max(np.abs(a - b)) <= 1  # float rounding of the same sums


@pytest.mark.parametrize(
    ("from_rate", "to_rate"), [(8000, 16000), (8000, 24000), (16000, 8000), (24000, 8000)]
)
def test_the_telephone_band_passes_flat(from_rate: int, to_rate: int) -> None:
    for hz in (300.0, 1000.0, 2000.0, 3000.0, 3400.0):
        outs, tail = stream(from_rate, to_rate, pcm(tone(from_rate, 1.0, hz)), from_rate // 25)
        assert abs(level_db(floats(b"".join(outs) + tail), hz, to_rate)) < 0.05, hz


def test_what_would_alias_is_80_db_down() -> None:
    """16 -> 8 kHz: tones above 4 kHz would fold back into the band."""
    for hz in (4200.0, 4600.0, 5000.0, 6000.0, 7000.0):
        x = tone(16000, 1.0, hz, amplitude=30000.0)
        outs, tail = stream(16000, 8000, x.astype("<i2").tobytes(), 640)
        y = floats(b"".join(outs) + tail)
        assert level_db(y, 8000 - hz, 8000, amplitude=30000.0) < -80, hz


def test_images_are_80_db_down() -> None:
    """8 -> 16 kHz: a tone at f must not come out at 8000 - f too."""
    for hz in (300.0, 1000.0, 3400.0):
        outs, tail = stream(8000, 16000, pcm(tone(8000, 1.0, hz, 30000.0)), 320)
        y = floats(b"".join(outs) + tail)
        assert level_db(y, 8000 - hz, 16000, amplitude=30000.0) < -80, hz


@pytest.mark.parametrize(("from_rate", "to_rate"), [*PAIRS, (44100, 16000)])
def test_a_tone_comes_out_as_soxr_hq_makes_it(from_rate: int, to_rate: int) -> None:
    for hz in (300.0, 1000.0, 3000.0):
        data = pcm(tone(from_rate, 1.0, hz))
        outs, tail = stream(from_rate, to_rate, data, round(from_rate * PIECE_SECS) * 2)
        ours = floats(b"".join(outs) + tail)
        reference = floats(resample(data, from_rate, to_rate))
        middle = slice(to_rate // 10, -to_rate // 10)
        error = ours[middle] - reference[middle]
        snr = 10 * math.log10(np.mean(reference[middle] ** 2) / np.mean(error**2))
        assert snr > 70, (hz, snr)


def test_rates_that_need_too_long_a_filter_use_soxr() -> None:
    resampler = StreamResampler(48000, 44101, low_delay=True)  # 44101 is prime
    assert resampler.delay_secs is None
    data = pcm(tone(48000, 0.1, 1000.0))
    out = resampler.resample(data) + resampler.flush()
    assert len(out) // 2 == math.floor(4800 * 44101 / 48000 + 0.5)


def test_equal_rates_and_no_audio() -> None:
    data = pcm(tone(16000, 0.02, 1000.0))
    resampler = StreamResampler(16000, 16000, low_delay=True)
    assert resampler.resample(data[:3]) + resampler.resample(data[3:]) == data
    assert resampler.flush() == b""
    resampler = StreamResampler(8000, 16000, low_delay=True)
    assert resampler.resample(b"") == b"" and resampler.resample(b"\x01") == b""
    assert resampler.flush() == b""
