"""How many two-turn callers ``load`` carries on one core and still tells the truth.

The server (``pipecat-wsclient serve --mode tone --latency 0.3``, pinned to
one core) answers every utterance exactly 0.3 s after it ends. ``load``,
pinned to the other core in one process, runs N callers of two turns each
(the bundled clip twice, ramp 20/s) for N = 50, 100, 200 (``--callers``).
A figure is true when the reported response p99 is within 20 ms of 300 ms.
Also recorded: the generator's own health (loop lag, CPU, full collections)
and its warnings.

Usage::

    .venv/bin/python bench/load_accuracy.py [--callers 50 100 200] [--quick]
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

from benchlib import ROOT, cores, out_dir, parser, write_result

TRUTH_MS = 300.0
TOLERANCE_MS = 20.0
CLI = [sys.executable, "-m", "pipecat_wsclient"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskset(core: int | None) -> list[str]:
    return [] if core is None else ["taskset", "-c", str(core)]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the tone server did not listen on {port}")


def one(uri: str, callers: int, ramp: float, core: int | None) -> dict[str, Any]:
    cmd = [*taskset(core), *CLI, "load", uri, "--calls", str(callers)]
    cmd += ["--concurrency", str(callers), "--ramp", str(ramp), "--turns", "2", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(out.stdout)
    response = report["metrics"]["response_ms"]
    p99 = response["p99"]
    return {
        "callers": callers,
        "ramp": ramp,
        "completed": report["completed"],
        "failed": report["failed"],
        "response_ms": response,
        "underruns": report["metrics"]["underruns"],
        "generator": report["generator"],
        "warnings": report["warnings"],
        "p99_error_ms": None if p99 is None else p99 - TRUTH_MS,
        "true": p99 is not None and abs(p99 - TRUTH_MS) <= TOLERANCE_MS and report["failed"] == 0,
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--callers", type=int, nargs="+", default=None)
    p.add_argument("--ramp", type=float, default=20.0)
    args = p.parse_args()
    callers = args.callers or ([10] if args.quick else [50, 100, 200])
    client_core, server_core = cores()
    port = free_port()
    port_arg = ["--port", str(port)]
    server = subprocess.Popen(
        [*taskset(server_core), *CLI, "serve", "--mode", "tone", "--latency", "0.3", *port_arg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    started = time.monotonic()
    try:
        wait_port(port)
        runs = []
        for n in callers:
            r = one(f"ws://127.0.0.1:{port}/", n, args.ramp, client_core)
            g = r["generator"]
            print(
                f"  N={n:4d} response p50 {r['response_ms']['p50']} p99 "
                f"{r['response_ms']['p99']} max {r['response_ms']['max']} ms; lag p99 "
                f"{g['loop_lag_p99_ms']:.1f} ms; CPU {g['cpu_mean']:.2f}; "
                f"{'true' if r['true'] else 'OFF'}; warnings {len(r['warnings'])}",
                flush=True,
            )
            runs.append(r)
    finally:
        server.terminate()
        server.wait(10)
    most = max((r["callers"] for r in runs if r["true"]), default=None)
    report = {
        "quick": args.quick,
        "config": {
            "truth_ms": TRUTH_MS,
            "tolerance_ms": TOLERANCE_MS,
            "turns": 2,
            "ramp": args.ramp,
            "client_core": client_core,
            "server_core": server_core,
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "runs": runs,
        "summary": {"most_true_callers_per_core": most, "goal_200_met": (most or 0) >= 200},
    }
    write_result(out_dir(args), "load_accuracy", report)


if __name__ == "__main__":
    main()
