"""The figures of ``codec_latency.py`` (pure, no I/O): the test signal, latencies, summaries.

- :func:`bursts`: the caller's audio, 100 ms 1 kHz tone bursts every 500 ms
  on silence, each starting at the start of a 20 ms frame;
- :func:`inbound_figures`: per-sample and per-frame latencies from the
  server's send times and the pipeline's arrivals;
- :func:`echo_latencies`: each burst's round trip from what came back;
- :func:`summarize`: medians over repeats, ratios, what the 8 kHz path adds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import percentile, ratio

PTIME = 0.02
SKIP_SECS = 0.2
"""The first frames (the call's start) are left out of the figures."""
BURST_SECS = 0.1
BURST_PERIOD_SECS = 0.5
BURST_AMPLITUDE = 8000
ONSET_THRESHOLD = 2000
FORMATS: dict[str, tuple[int, int]] = {
    "slin16": (16000, 2),
    "slin": (8000, 2),
    "ulaw": (8000, 1),
    "alaw": (8000, 1),
}
GOAL_ADDED_INBOUND_P99_MS = 25.0
"""8 kHz into a 16 kHz pipeline adds at most this beyond the same-rate path (sample p99)."""
GOAL_ADDED_ECHO_P99_MS = 65.0
"""...and at most a 40 ms output chunk more on the way back: the echo's added p99."""


def encode(pcm: bytes, fmt: str) -> bytes:
    from pipecat.audio.utils import audioop

    if fmt == "ulaw":
        return audioop.lin2ulaw(pcm, 2)
    if fmt == "alaw":
        return audioop.lin2alaw(pcm, 2)
    return pcm


def decode(data: bytes, fmt: str) -> bytes:
    from pipecat.audio.utils import audioop

    if fmt == "ulaw":
        return audioop.ulaw2lin(data, 2)
    if fmt == "alaw":
        return audioop.alaw2lin(data, 2)
    return data[: len(data) // 2 * 2]


def burst_starts(rate: int, seconds: float) -> list[int]:
    """Where each burst starts (a sample at the start of a frame), after the skipped start."""
    n, burst = round(rate * seconds), round(rate * BURST_SECS)
    first = round(rate * (SKIP_SECS + 5 * PTIME))
    return list(range(first, n - burst, round(rate * BURST_PERIOD_SECS)))


def bursts(rate: int, seconds: float) -> bytes:
    """Tone bursts on silence, as 16-bit PCM."""
    x = np.zeros(round(rate * seconds))
    t = np.arange(round(rate * BURST_SECS)) / rate
    for at in burst_starts(rate, seconds):
        x[at : at + len(t)] = BURST_AMPLITUDE * np.sin(2 * np.pi * 1000 * t)
    return x.astype("<i2").tobytes()


def echo_latencies(
    received: list[tuple[float, bytes]], fmt: str, sent: list[float], seconds: float
) -> list[float]:
    """Each burst's round trip (ms): its first frame's send to its onset's coming back.

    The onset comes back at the arrival of the message that holds it plus
    its offset in that message (as if each message played as it arrived):
    an onset at the end of a lump counts that much later. A playout queue
    that audio sent ahead of time would build at the far end is left out: it
    depends on how the call started, not on the codec.
    """
    rate, _ = FORMATS[fmt]
    pcm, plays, start = b"", [], 0
    for t, message in received:
        samples = decode(message, fmt)
        plays.append((start, t))  # (the message's first sample's index, its arrival)
        start += len(samples) // 2
        pcm += samples
    x = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32))
    loud = np.flatnonzero(x > ONSET_THRESHOLD)
    quiet = round(rate * 0.05)
    onsets = [int(i) for k, i in enumerate(loud) if k == 0 or i - loud[k - 1] > quiet]
    firsts = np.array([first for first, _ in plays])
    played = []
    for i in onsets:
        m = int(np.searchsorted(firsts, i, side="right")) - 1
        played.append(plays[m][1] + (i - plays[m][0]) / rate)
    frame = round(rate * PTIME)
    out = []
    for at in burst_starts(rate, seconds):
        if at // frame >= len(sent):
            continue
        t0 = sent[at // frame]
        after = [p for p in played if t0 < p < t0 + BURST_PERIOD_SECS]
        if after:
            out.append(round((after[0] - t0) * 1000, 3))
    return out


def inbound_figures(
    arrivals: list[tuple[float, int]], sent: list[float], fmt: str, rate: int
) -> dict[str, Any]:
    """Frame and sample latencies (ms) and the frames' sizes; see the module docstring."""
    in_rate = FORMATS[fmt][0]
    frame = round(in_rate * PTIME)
    skip = round(SKIP_SECS / PTIME)
    if not arrivals or len(sent) <= skip:
        return {"frames": len(arrivals)}
    times = np.array([t for t, _ in arrivals])
    covered = np.cumsum([n for _, n in arrivals]) * in_rate / rate
    newest = np.ceil(covered - 1e-6).astype(int) - 1
    frame_of = np.minimum(newest // frame, len(sent) - 1)
    per_frame = ((times - np.array(sent)[frame_of]) * 1000)[frame_of >= skip]
    inputs = np.arange(skip * frame, min(len(sent) * frame, int(covered[-1])))
    carried_by = np.searchsorted(covered, inputs, side="right")
    per_sample = (times[carried_by] - np.array(sent)[inputs // frame]) * 1000
    sizes_ms = np.array([n for _, n in arrivals]) / rate * 1000
    return {
        "frames": len(arrivals),
        "frames_sent": len(sent),
        "frames_of_20ms": round(float(np.mean(np.abs(sizes_ms - 20) < 0.5)), 3),
        "largest_frame_ms": round(float(sizes_ms.max()), 1),
        "frame_ms": stats(sorted(per_frame)),
        "sample_ms": {**stats(sorted(per_sample)), "mean": round(float(per_sample.mean()), 3)},
    }


def stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(values[-1], 3) if values else None,
    }


def name(case: tuple[str, int]) -> str:
    return f"{case[0]}->{case[1] // 1000}k"


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for r in runs:
        v: Any = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and v == v:  # not NaN
            values.append(float(v))
    return round(float(np.median(values)), 3) if values else None


KEYS = {
    "sample_p50": ("sample_ms", "p50"),
    "sample_p99": ("sample_ms", "p99"),
    "sample_mean": ("sample_ms", "mean"),
    "frame_p99": ("frame_ms", "p99"),
    "echo_p50": ("echo_ms", "p50"),
    "echo_p99": ("echo_ms", "p99"),
    "frames_of_20ms": ("frames_of_20ms",),
    "largest_frame_ms": ("largest_frame_ms",),
}


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Medians over repeats per case and implementation, ratios, what the 8 kHz path adds."""
    summary: dict[str, Any] = {}
    for case, by_impl in runs.items():
        summary[case] = {
            impl: {k: median_of(rs, *path) for k, path in KEYS.items()}
            for impl, rs in by_impl.items()
        }
        if "ours" in by_impl and "pipecat" in by_impl:
            summary[case]["ratio_ours_over_pipecat"] = {
                k: ratio(summary[case]["ours"][k], summary[case]["pipecat"][k])
                for k in ("sample_p50", "sample_p99", "frame_p99", "echo_p50", "echo_p99")
            }
    same = summary.get("slin16->16k")
    added: dict[str, Any] = {}
    goals: dict[str, Any] = {}
    for case in summary:
        if not case.endswith("->16k") or case == "slin16->16k" or same is None:
            continue
        added[case] = {}
        for impl in ("ours", "pipecat"):
            if impl in summary[case] and impl in same:
                a, b = summary[case][impl], same[impl]
                added[case][impl] = {
                    k: None if a[k] is None or b[k] is None else round(a[k] - b[k], 3)
                    for k in ("sample_p50", "sample_p99", "echo_p50", "echo_p99")
                }
        ours = added[case].get("ours")
        if ours and ours["sample_p99"] is not None and ours["echo_p99"] is not None:
            goals[case] = {
                "added_inbound_sample_p99_ms": ours["sample_p99"],
                "added_echo_p99_ms": ours["echo_p99"],
                "met": ours["sample_p99"] <= GOAL_ADDED_INBOUND_P99_MS
                and ours["echo_p99"] <= GOAL_ADDED_ECHO_P99_MS,
            }
    summary["added_over_slin16"] = added
    summary["goal_8khz_adds_at_most_a_frame"] = {
        "inbound_sample_p99_ms": GOAL_ADDED_INBOUND_P99_MS,
        "echo_p99_ms": GOAL_ADDED_ECHO_P99_MS,
        "cases": goals,
        "met": bool(goals) and all(g["met"] for g in goals.values()),
    }
    return summary
