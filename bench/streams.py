"""N concurrent sessions streaming both ways: client CPU, RSS and stream rates, side by side.

Each session streams 16 kHz mono in 20 ms chunks both ways against
``stream_server.py`` in another process (see ``stream_client.py`` for the
pipeline): client -> server, ``TTSAudioRawFrame`` s paced by
``transport.output()`` (``audio_out_10ms_chunks=2``); server -> client, 20 ms
protobuf audio chunks sent in real time. All N pipelines run in one client
process, one process per implementation and run, one after the other,
against the same server; the client is pinned to one core, the server to the
other.

Reported per implementation and N (median and spread over ``--repeats``):

- ``cpu_per_stream``: client process CPU seconds per second of stream
  (CPU over the steady window / (window * N)); when the client is saturated
  (streams below real time) this is only 1/N of the process, so
  ``cpu_per_audio_s`` (CPU / audio seconds actually moved, averaged over both
  directions) is given too;
- ``rss_per_session_kb``: (RSS at steady state - RSS before the sessions) / N;
- ``out_rate`` / ``in_rate``: per stream, audio seconds the server received
  from it (resp. it received from the server) / window: min, p5, median;
- ``sustained``: every stream at >= 0.98 both ways.

Pipecat's client offers permessage-deflate (its default) and the server
accepts it (websockets' default, like most servers), so ``pipecat`` is
compressed; ``pipecat_nodeflate`` is the same client against a listener that
declines it.

Usage::

    .venv/bin/python bench/streams.py [--sessions 10 100 500] [--repeats 3] [--quick]
"""

from __future__ import annotations

import time
from typing import Any

from benchlib import (
    IMPL_NOTES,
    ServerProcess,
    cores,
    out_dir,
    parser,
    ratio,
    run_client,
    summarize,
    write_result,
)

KEYS = ("cpu_per_stream", "cpu_per_audio_s", "cpu_frac", "rss_per_session_kb", "server_cpu_frac")


def impls_for(n: int, requested: list[str]) -> list[str]:
    # Pipecat's client without deflate is an extra view; at 500 sessions
    # every client is long past saturation and each run costs a minute.
    return [i for i in requested if not (i == "pipecat_nodeflate" and n > 100)]


def window_for(n: int, window: float) -> float:
    # Past ~40 sessions every client is saturated: a shorter window says as much.
    return window if n <= 10 else min(window, 6.0 if n <= 100 else 5.0)


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in runs if "error" not in r]
    if not done:
        return {"error": runs[0]["error"] if runs else "no run"}
    out: dict[str, Any] = {k: summarize((r[k] for r in done), 6) for k in KEYS}
    for key in ("out_rate", "in_rate"):
        out[key] = {
            s: summarize((r[key][s] for r in done), 4) for s in ("min", "p5", "median", "frac_ok")
        }
    out["sustained"] = all(r["sustained"] for r in done)
    out["runs_sustained"] = sum(r["sustained"] for r in done)
    out["errors"] = sum(r["errors"] for r in done)
    out["connected_min"] = min(r["connected"] for r in done)
    out["window_s"] = summarize((r["window_s"] for r in done), 2)
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--window", type=float, default=None, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--impls", nargs="+", default=["ours", "pipecat", "pipecat_nodeflate"])
    args = p.parse_args()
    quick = args.quick
    sessions = args.sessions or ([10] if quick else [10, 100, 150, 300])
    repeats = args.repeats or (1 if quick else 3)
    window = args.window or (2.0 if quick else 8.0)
    warmup = args.warmup or (1.0 if quick else 2.0)
    impls = ["ours", "pipecat"] if quick else args.impls
    client_core, server_core = cores()

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    started = time.monotonic()
    with ServerProcess(server_core) as server:
        for n in sessions:
            runs[str(n)] = {impl: [] for impl in impls_for(n, impls)}
            # Past saturation a run gets long and says little more: once.
            reps = repeats if n <= 100 else 1
            for rep in range(reps):
                order = impls_for(n, impls)
                order = order if rep % 2 == 0 else order[::-1]
                for impl in order:
                    try:
                        r = run_client(
                            server,
                            impl,
                            n,
                            warmup=warmup if n <= 100 else 1.0,
                            window=window_for(n, window),
                            core=client_core,
                            timeout=45 + n * 0.05 if n <= 100 else 60,
                        )
                    except (TimeoutError, RuntimeError) as e:
                        r = {"impl": impl, "sessions": n, "error": str(e)}
                    runs[str(n)][impl].append(r)
                    print(
                        f"N={n:4d} {impl:18s} "
                        + (
                            f"cpu/stream={r['cpu_per_stream']:.4f} "
                            f"cpu/audio-s={r['cpu_per_audio_s']:.4f} "
                            f"rss/session={r['rss_per_session_kb']:.0f}kB"
                            f" out min={r['out_rate']['min']:.3f} in min={r['in_rate']['min']:.3f}"
                            if "error" not in r
                            else f"ERROR {r['error']}"
                        ),
                        flush=True,
                    )
    summary: dict[str, Any] = {}
    for n, by_impl in runs.items():
        summary[n] = {impl: summarize_runs(rs) for impl, rs in by_impl.items()}
        ours = summary[n].get("ours", {})
        for other in ("pipecat", "pipecat_nodeflate"):
            theirs = summary[n].get(other)
            if not theirs or "error" in theirs or "error" in ours:
                continue
            summary[n][f"ratio_ours_over_{other}"] = {
                k: ratio(ours[k]["median"], theirs[k]["median"])
                for k in ("cpu_per_stream", "cpu_per_audio_s", "rss_per_session_kb")
            }
    report = {
        "quick": quick,
        "config": {
            "sessions": sessions,
            "repeats": repeats,
            "window_s": window,
            "window_s_by_n": {str(n): window_for(n, window) for n in sessions},
            "warmup_s": warmup,
            "client_core": client_core,
            "server_core": server_core,
            "chunk_ms": 20,
            "audio_out_10ms_chunks": 2,
            "sample_rate": 16000,
            "impls": {i: IMPL_NOTES[i] for i in impls},
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": summary,
        "runs": runs,
    }
    write_result(out_dir(args), "streams", report)


if __name__ == "__main__":
    main()
