"""Stream resamplers for live calls, measured: what each holds back, its quality, its cost.

Pure CPU, no network. For each candidate and rate pair (8 kHz carrier <->
16 and 24 kHz pipeline), fed 20 ms pieces:

- *held*: after each piece, the audio fed in but not yet returned (median,
  most), and the share of pieces that give 20 ms;
- *impulse*: an impulse in the middle of piece 10 comes out with piece ``10 +
  impulse_pieces_late``;
- *quality*: gain of tones at 300 Hz to 3.4 kHz (the telephone band) and
  at 3.6 and 3.7 kHz (the transition band; at 8 kHz), the worst alias or
  image of tones that fold into the band, and a 1 kHz tone's difference from
  soxr ``HQ``'s one-shot conversion (dB under the tone; meaningless for a
  minimum-phase filter, whose phase differs);
- *cost*: microseconds per 20 ms piece (best of 7).

Candidates: soxr's ``ResampleStream`` at each preset (``VHQ`` is what
Pipecat's ``create_stream_resampler()`` uses), ``HQ`` with soxr's minimum
phase (``soxr_ext``, not in soxr's public API), and ours
(``StreamResampler(low_delay=True)``, what the protocols use).

Usage::

    .venv/bin/python bench/resampler.py [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import out_dir, parser, write_result

from pipecat_wsclient.audio.resample import StreamResampler

PIECE_SECS = 0.02
PAIRS = [(8000, 16000), (8000, 24000), (16000, 8000), (24000, 8000)]
SOXR_MINIMUM_PHASE = 0x30  # libsoxr's SOXR_MINIMUM_PHASE recipe flag

Feed = Callable[[np.ndarray], np.ndarray]


def soxr_stream(quality: str | int) -> Callable[[int, int], Feed]:
    def make(from_rate: int, to_rate: int) -> Feed:
        if isinstance(quality, int):
            raw = soxr.soxr_ext.CSoxr(from_rate, to_rate, 1, soxr.soxr_ext.SOXR_INT16_I, quality)
            return lambda x: raw.process_int16(np.ascontiguousarray(x[:, None]), False)[:, 0]
        stream = soxr.ResampleStream(from_rate, to_rate, 1, "int16", quality=quality)
        return stream.resample_chunk

    return make


def ours(from_rate: int, to_rate: int) -> Feed:
    resampler = StreamResampler(from_rate, to_rate, low_delay=True)
    return lambda x: np.frombuffer(resampler.resample(x.tobytes()), "<i2")


CANDIDATES: dict[str, Callable[[int, int], Feed]] = {
    "soxr QQ": soxr_stream("QQ"),
    "soxr LQ": soxr_stream("LQ"),
    "soxr MQ": soxr_stream("MQ"),
    "soxr HQ": soxr_stream("HQ"),
    "soxr VHQ (Pipecat's)": soxr_stream("VHQ"),
    "soxr HQ minimum phase": soxr_stream(soxr.HQ | SOXR_MINIMUM_PHASE),
    "ours (low delay)": ours,
}


def feed(make: Callable[[int, int], Feed], from_rate: int, to_rate: int, x: np.ndarray) -> list:
    """The output of each 20 ms piece of ``x`` (int16), in order."""
    step = round(from_rate * PIECE_SECS)
    f = make(from_rate, to_rate)
    return [np.asarray(f(x[i : i + step])) for i in range(0, len(x), step)]


def tone(rate: int, hz: float, amplitude: float = 10000.0, secs: float = 1.0) -> np.ndarray:
    t = np.arange(round(rate * secs)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def level_db(y: np.ndarray, hz: float, rate: int, amplitude: float = 10000.0) -> float:
    """The level of ``hz`` in the middle of ``y``, in dB against ``amplitude`` (Hann window)."""
    y = y.astype(np.float64)[len(y) // 5 : -len(y) // 5]
    window = np.hanning(len(y))
    t = np.arange(len(y)) / rate
    found = abs(np.sum(y * window * np.exp(-2j * np.pi * hz * t))) * 2 / window.sum()
    return round(20 * math.log10(max(found, 1e-9) / amplitude), 2)


def measure(make: Callable[[int, int], Feed], a: int, b: int, quick: bool) -> dict[str, Any]:
    step = round(a * PIECE_SECS)
    noise = (np.random.default_rng(0).standard_normal(a * 2) * 3000).astype(np.int16)
    outs = feed(make, a, b, noise)
    sizes = [len(o) for o in outs]
    fed = np.arange(1, len(outs) + 1) * PIECE_SECS * 1000
    held = fed - np.cumsum(sizes) / b * 1000
    impulse = np.zeros(a, np.int16)
    impulse[10 * step + step // 2] = 20000
    ends = np.cumsum([len(o) for o in feed(make, a, b, impulse)])
    out = np.concatenate(feed(make, a, b, impulse))
    peak = int(np.argmax(np.abs(out.astype(np.int32)))) if len(out) else 0
    low = min(a, b)
    band = [h for h in (300.0, 1000.0, 2000.0, 3000.0, 3400.0) if h < 0.45 * low]
    band += [0.45 * low, 0.4625 * low]  # 3.6 and 3.7 kHz at 8 kHz: the transition band
    gains = {h: level_db(np.concatenate(feed(make, a, b, tone(a, h))), h, b) for h in band}
    # Tones whose 16-bit rounding spreads as noise, not on their harmonics
    # (a 1 kHz tone's rounding error at 16 kHz has a line at 7 kHz, its image).
    if a > b:  # tones above the new Nyquist frequency that would fold into the band
        folds = [(h, b - h) for h in (4603.0, 5009.0, 6007.0, 7001.0) if h < a / 2]
    else:  # images of the band above the old Nyquist frequency
        folds = [(h, a - h) for h in (311.0, 1009.0, 3391.0)]
    worst = max(
        level_db(np.concatenate(feed(make, a, b, tone(a, h, 30000.0))), f, b, 30000.0)
        for h, f in folds
    )
    reference = soxr.resample(tone(a, 1000.0), a, b, quality="HQ").astype(np.float64)
    ours_ = np.concatenate(feed(make, a, b, tone(a, 1000.0))).astype(np.float64)
    n = min(len(reference), len(ours_))
    middle = slice(b // 10, n - b // 10)
    error = ours_[middle] - reference[middle]
    snr = 10 * math.log10(np.mean(reference[middle] ** 2) / max(np.mean(error**2), 1e-12))
    f = make(a, b)
    piece = noise[:step]
    cost = min(timeit.repeat(lambda: f(piece), number=200 if quick else 2000, repeat=7))
    return {
        "held_ms_median": round(float(np.median(held[5:])), 2),
        "held_ms_max": round(float(held[5:].max()), 2),
        "pieces_giving_20ms": round(float(np.mean(np.array(sizes[5:]) == b * PIECE_SECS)), 3),
        "largest_piece_ms": round(max(sizes) / b * 1000, 1),
        "impulse_pieces_late": int(np.searchsorted(ends, peak, side="right")) - 10,
        "gain_db": {str(int(h)): g for h, g in gains.items()},
        "worst_alias_or_image_db": worst,
        "tone_vs_soxr_hq_one_shot_db": round(snr, 1),
        "us_per_piece": round(cost / (200 if quick else 2000) * 1e6, 1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    results: dict[str, Any] = {}
    for name, make in CANDIDATES.items():
        results[name] = {}
        for a, b in PAIRS:
            r = measure(make, a, b, args.quick)
            results[name][f"{a // 1000}->{b // 1000}k"] = r
            print(
                f"{name:22s} {a // 1000:2d}->{b // 1000:2d}k held {r['held_ms_median']:6.1f}/"
                f"{r['held_ms_max']:6.1f} ms, 20 ms pieces {r['pieces_giving_20ms']:.0%}, "
                f"impulse +{r['impulse_pieces_late']}, 3.4k {r['gain_db'].get('3400')} dB, "
                f"alias {r['worst_alias_or_image_db']} dB, vs HQ {r['tone_vs_soxr_hq_one_shot_db']}"
                f" dB, {r['us_per_piece']} us",
                flush=True,
            )
    delay = {
        f"{a // 1000}->{b // 1000}k": StreamResampler(a, b, low_delay=True).delay_secs
        for a, b in PAIRS
    }
    write_result(
        out_dir(args),
        "resampler",
        {"quick": args.quick, "piece_ms": 20, "ours_delay_secs": delay, "candidates": results},
    )


if __name__ == "__main__":
    main()
