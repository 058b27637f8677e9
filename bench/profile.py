"""Where the client's CPU goes at N sessions, ours and Pipecat's client side by side.

Runs the ``streams.py`` workload (``stream_client.py``, N=50 by default) for
each implementation in its own process and samples it with py-spy
(``py-spy record --format raw``) over the steady window (~15 s). Without
py-spy (it is in the ``bench`` extra), an in-process stack sampler stands in
(less exact: it samples only when the main thread lets go of the GIL).

Each sample is a Python stack. Summarized into JSON as shares of all samples
(= of the process's CPU):

- ``inclusive``: samples with at least one frame in a group: permessage-deflate
  (``deflate``), the WebSocket client module + the websockets library
  (``client_module_plus_websockets``), Pipecat's ``BaseOutputTransport``,
  its ``BaseInputTransport``;
- ``owner``: each sample counted once, for the innermost frame that belongs to
  a group (the standard library, e.g. asyncio, is attributed to its caller):
  ``deflate``, ``websockets``, ``client_module`` (``pipecat_wsclient`` for
  ours, ``pipecat.transports.websocket.client`` for Pipecat's), ``serializer``
  (Pipecat's protobuf serializer and protobuf), ``base_output_transport``,
  ``base_input_transport``, ``frame_machinery`` (frame processors, pipeline,
  frames, observers, task manager: the rest of Pipecat), ``bench_harness``
  (the feeder and sink of the benchmark), ``event_loop_poll`` (epoll),
  ``event_loop`` (asyncio with no project frame above it), ``other``;
- ``top_self``: the functions most often innermost;
- ``client_functions``: inclusive share of each function of the client module.

Usage::

    .venv/bin/python bench/profile.py [--sessions 50] [--seconds 15] [--quick]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    IMPL_NOTES,
    ROOT,
    ServerProcess,
    cores,
    out_dir,
    parser,
    run_client,
    write_result,
)

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
RATE_HZ = 200


def py_spy() -> str | None:
    if os.environ.get("WSCLIENT_BENCH_NO_PYSPY"):
        return None
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def group(path: str, impl: str, func: str = "") -> str | None:
    """The group of a frame's file; None for the standard library (attributed to its caller)."""
    p = path.replace("\\", "/")
    if "permessage_deflate" in p:
        return "deflate"
    if "/websockets/" in p:
        return "websockets"
    if impl == "ours" and "/pipecat_wsclient/" in p:
        return "client_module"
    if impl != "ours" and p.endswith("pipecat/transports/websocket/client.py"):
        return "client_module"
    if "/pipecat/serializers/" in p or "/google/protobuf/" in p:
        return "serializer"
    if p.endswith("pipecat/transports/base_output.py"):
        return "base_output_transport"
    if p.endswith("pipecat/transports/base_input.py"):
        return "base_input_transport"
    if "/pipecat/" in p or "/wait_for2/" in p:
        return "frame_machinery"
    if p.endswith("bench/stream_client.py"):
        # The script's own frames under which the event loop runs are not the harness.
        return None if func in ("<module>", "main") else "bench_harness"
    if "/loguru/" in p:
        return "logging"
    if ("/lib/python3" in p and "site-packages" not in p) or p.startswith("<"):
        return None
    return "other"


def parse_frame(text: str) -> tuple[str, str]:
    m = FRAME.match(text)
    if not m:
        return text, ""
    return m.group("func"), m.group("path")


def short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/bench/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarize_stacks(raw: str, impl: str) -> dict[str, Any]:
    owner: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    top_self: Counter[str] = Counter()
    client_funcs: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [parse_frame(f) for f in stack.split(";")]
        groups = [group(path, impl, func) for func, path in frames]
        leaf_func, leaf_path = frames[-1]
        top_self[f"{leaf_func} ({short(leaf_path)})"] += n
        found = next((g for g in reversed(groups) if g is not None), None)
        if found is None:
            found = "event_loop_poll" if leaf_func.endswith("select") else "event_loop"
        owner[found] += n
        present = set(groups)
        if "deflate" in present:
            inclusive["deflate"] += n
        if present & {"client_module", "websockets", "deflate"}:
            inclusive["client_module_plus_websockets"] += n
        if "client_module" in present:
            inclusive["client_module"] += n
        if present & {"websockets", "deflate"}:
            inclusive["websockets_library"] += n
        if "base_output_transport" in present:
            inclusive["base_output_transport"] += n
            if not present & {"client_module", "websockets", "deflate"}:
                inclusive["base_output_transport_excluding_client"] += n
        if "base_input_transport" in present:
            inclusive["base_input_transport"] += n
        if "serializer" in present:
            inclusive["serializer"] += n
        seen = set()
        for (func, path), g in zip(frames, groups, strict=True):
            key = f"{func} ({short(path)})"
            if g == "client_module" and key not in seen:
                seen.add(key)
                client_funcs[key] += n

    def share(c: Counter[str], limit: int | None = None) -> dict[str, float]:
        return {k: round(v / total * 100, 2) for k, v in c.most_common(limit)} if total else {}

    return {
        "samples": total,
        "owner_pct": share(owner),
        "inclusive_pct": share(inclusive),
        "top_self_pct": share(top_self, 25),
        "client_functions_inclusive_pct": share(client_funcs, 30),
    }


def profile_one(
    server: ServerProcess,
    impl: str,
    n: int,
    seconds: float,
    core: Any,
    keep_raw: Path | None = None,
) -> dict:
    spy = py_spy()
    tmp = Path(tempfile.mkdtemp(prefix="wsclient-profile-"))
    out = tmp / f"{impl}.txt"
    procs: list[subprocess.Popen[bytes]] = []
    duration = max(1, int(seconds) - 1)

    def attach(pid: int, window: float) -> None:
        assert spy is not None
        cmd = [spy, "record", "--pid", str(pid), "--duration", str(duration)]
        cmd += ["--rate", str(RATE_HZ), "--format", "raw", "--full-filenames", "-o", str(out)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    method = "py-spy" if spy else "stack sampler (py-spy not installed)"
    extra = [] if spy else ["--sample-profile", str(out)]
    result = run_client(
        server,
        impl,
        n,
        warmup=2.0,
        window=seconds,
        core=core,
        extra=extra,
        on_steady=attach if spy else None,
    )
    for proc in procs:
        _, err = proc.communicate(timeout=30)
        if proc.returncode != 0 or not out.exists():
            method = f"py-spy failed ({err.decode(errors='replace').strip()[-200:]})"
    raw = out.read_text() if out.exists() else ""
    summary = summarize_stacks(raw, impl)
    summary["method"] = method
    summary["seconds"] = duration if spy else seconds
    summary["cpu_frac"] = result["cpu_frac"]
    if spy and summary["samples"]:
        summary["cpu_frac_from_samples"] = round(summary["samples"] / (RATE_HZ * duration), 3)
    summary["run"] = {
        k: result[k] for k in ("sessions", "cpu_per_stream", "out_rate", "in_rate", "sustained")
    }
    if keep_raw is not None:
        keep_raw.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.copy(out, keep_raw / f"{impl}-{n}.txt")
    shutil.rmtree(tmp, ignore_errors=True)
    return summary


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--impls", nargs="+", default=["ours", "pipecat", "pipecat_nodeflate"])
    p.add_argument("--keep-raw", type=Path, default=None, help="keep the raw stacks here")
    args = p.parse_args()
    n = args.sessions or (10 if args.quick else 50)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    impls = ["ours", "pipecat"] if args.quick else args.impls
    client_core, server_core = cores()
    started = time.monotonic()
    profiles: dict[str, Any] = {}
    with ServerProcess(server_core) as server:
        for impl in impls:
            # py-spy attaches to a running process; on a loaded machine the
            # attach can miss a short window entirely. One more try, recorded.
            for attempt in (1, 2):
                profiles[impl] = profile_one(server, impl, n, seconds, client_core, args.keep_raw)
                profiles[impl]["attempts"] = attempt
                if profiles[impl]["samples"]:
                    break
            inc, own = profiles[impl]["inclusive_pct"], profiles[impl]["owner_pct"]
            print(
                f"{impl:18s} deflate {inc.get('deflate', 0):5.1f}%  client+websockets "
                f"{inc.get('client_module_plus_websockets', 0):5.1f}%  BaseOutputTransport "
                f"{inc.get('base_output_transport', 0):5.1f}%  frame machinery "
                f"{own.get('frame_machinery', 0):5.1f}%  ({profiles[impl]['method']})",
                flush=True,
            )
    report = {
        "quick": args.quick,
        "config": {
            "sessions": n,
            "seconds": seconds,
            "rate_hz": RATE_HZ,
            "client_core": client_core,
            "server_core": server_core,
            "impls": {i: IMPL_NOTES[i] for i in impls},
            "root": str(ROOT),
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "profiles": profiles,
    }
    write_result(out_dir(args), "profile", report)


if __name__ == "__main__":
    main()
