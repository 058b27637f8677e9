"""The most sessions one client process sustains in real time on ONE core, side by side.

A session "sustains" when its stream runs at >= 0.98 of real time both ways
(the server received >= 0.98 s of its audio per second, and it received
>= 0.98 s of the server's) over the measuring window; a step passes when
every session does, with no error. The client process is pinned to one core,
the server (``stream_server.py``) to the other. N doubles from ``--start``
until a step fails, then bisects down to a resolution of ~10 %. Workload as
``streams.py`` (20 ms chunks both ways, protobuf, ``stream_client.py``).

Usage::

    .venv/bin/python bench/capacity.py [--repeats 2] [--quick]
"""

from __future__ import annotations

import statistics
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


def step(server: ServerProcess, impl: str, n: int, warmup: float, window: float, core: Any) -> dict:
    try:
        r = run_client(server, impl, n, warmup=warmup, window=window, core=core, timeout=60 + n)
    except (TimeoutError, RuntimeError) as e:
        return {"sessions": n, "sustained": False, "error": str(e)}
    ok = r["sustained"] and r["errors"] == 0
    print(
        f"  {impl:18s} N={n:4d} {'ok  ' if ok else 'FAIL'} out min={r['out_rate']['min']:.3f} "
        f"in min={r['in_rate']['min']:.3f} cpu={r['cpu_frac']:.2f}",
        flush=True,
    )
    return {
        "sessions": n,
        "sustained": ok,
        "out_rate_min": r["out_rate"]["min"],
        "in_rate_min": r["in_rate"]["min"],
        "cpu_frac": r["cpu_frac"],
        "server_cpu_frac": r["server_cpu_frac"],
        "errors": r["errors"],
    }


def search(
    server: ServerProcess,
    impl: str,
    start: int,
    limit: int,
    warmup: float,
    window: float,
    core: Any,
    max_steps: int,
) -> dict[str, Any]:
    steps: list[dict] = []
    lo, hi = 0, None  # lo: largest passing N, hi: smallest failing N
    n = start
    while len(steps) < max_steps:
        s = step(server, impl, n, warmup, window, core)
        steps.append(s)
        if s["sustained"]:
            lo = max(lo, n)
        else:
            hi = n if hi is None else min(hi, n)
        if hi is None:
            if n >= limit:
                break
            n = min(limit, n * 2)
            continue
        if hi - lo <= max(1, round(lo * 0.1)):
            break
        n = (lo + hi) // 2 if lo else max(1, hi // 2)
        if n in (lo, hi):
            break
    return {"max_sustained": lo, "first_failing": hi, "steps": steps}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--start", type=int, default=None)
    p.add_argument("--limit", type=int, default=1024)
    p.add_argument("--window", type=float, default=None)
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--impls", nargs="+", default=["ours", "pipecat", "pipecat_nodeflate"])
    args = p.parse_args()
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    start = args.start or (4 if quick else 16)
    window = args.window or (1.5 if quick else 4.0)
    warmup = args.warmup or (0.5 if quick else 1.5)
    max_steps = 1 if quick else 12
    impls = ["ours", "pipecat"] if quick else args.impls
    client_core, server_core = cores()
    started = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    with ServerProcess(server_core) as server:
        for rep in range(repeats):
            for impl in impls if rep % 2 == 0 else impls[::-1]:
                print(f"{impl}: ramp from N={start}", flush=True)
                results[impl].append(
                    search(server, impl, start, args.limit, warmup, window, client_core, max_steps)
                )
    summary: dict[str, Any] = {
        impl: {
            "max_sustained": summarize((r["max_sustained"] for r in rs), 1),
            "runs_max_sustained": [r["max_sustained"] for r in rs],
            "first_failing": [r["first_failing"] for r in rs],
        }
        for impl, rs in results.items()
    }
    ours = summary.get("ours", {}).get("max_sustained", {}).get("median")
    for other in ("pipecat", "pipecat_nodeflate"):
        if other in summary:
            summary[f"ratio_ours_over_{other}"] = ratio(
                ours, summary[other]["max_sustained"]["median"]
            )
    report = {
        "quick": quick,
        "config": {
            "criterion": "every stream >= 0.98 of real time both ways, no error",
            "repeats": repeats,
            "start": start,
            "window_s": window,
            "warmup_s": warmup,
            "max_steps": max_steps,
            "client_core": client_core,
            "server_core": server_core,
            "chunk_ms": 20,
            "impls": {i: IMPL_NOTES[i] for i in impls},
            "resolution": "~10 % (bisection)",
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": summary,
        "runs": results,
    }
    write_result(out_dir(args), "capacity", report)
    for impl in impls:
        print(
            f"{impl}: max sustained {statistics.median(r['max_sustained'] for r in results[impl])}"
        )


if __name__ == "__main__":
    main()
