"""Run every side-by-side benchmark, then write the results table (``report.py``).

Full run (~15 minutes on 2 cores): results in ``bench/results/``.
``--quick`` (under a minute, small N; the CI smoke test): results in
``bench/results/quick/`` or ``--out``.

Usage::

    .venv/bin/python bench/run_all.py [--quick] [--out DIR] [--only streams capacity ...]
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchlib import BENCH, PY, ROOT, out_dir, parser

BENCHMARKS: list[tuple[str, list[str]]] = [
    ("streams", []),
    ("capacity", []),
    ("pacing", ["--seconds", "60"]),
    ("inbound_latency", []),
    ("end_to_close", []),
    ("profile", []),
    ("load_accuracy", []),
]


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=None, help="run only these benchmarks")
    args = p.parse_args()
    folder = out_dir(args)
    failed = []
    started = time.monotonic()
    for name, extra in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        cmd = [PY, str(BENCH / f"{name}.py"), "--out", str(folder)]
        cmd += ["--quick"] if args.quick else extra
        t0 = time.monotonic()
        print(f"=== {name}: {' '.join(cmd[1:])}", flush=True)
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        print(f"=== {name}: exit {rc} in {time.monotonic() - t0:.1f}s", flush=True)
        if rc != 0:
            failed.append(name)
    rc = subprocess.run([PY, str(BENCH / "report.py"), "--results", str(folder)], cwd=ROOT)
    if rc.returncode != 0:
        failed.append("report")
    print(f"=== all done in {time.monotonic() - started:.1f}s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
