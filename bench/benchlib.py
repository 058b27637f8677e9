"""Shared helpers of the side-by-side benchmarks (no Pipecat import here).

- the implementations compared and how each is configured;
- the stream server in its own process (:class:`ServerProcess`) and its
  control channel;
- running a client in its own process (``stream_client.py``) pinned to a core;
- medians and spreads, and writing ``bench/results/*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
QUICK_RESULTS = RESULTS / "quick"
PY = sys.executable

RATE = 16000
CHUNK_SECS = 0.02
CHUNK_BYTES = int(RATE * CHUNK_SECS) * 2
SPEECH = ROOT / "src" / "pipecat_wsclient" / "caller" / "data" / "question.wav"

IMPLS = ("ours", "pipecat")
"""The two implementations every benchmark runs side by side."""

IMPL_NOTES = {
    "ours": "pipecat_wsclient, default params (compression off)",
    "pipecat": (
        "pipecat.transports.websocket.client, default params: it offers permessage-deflate "
        "and the server (websockets' defaults) accepts it, so its traffic is compressed"
    ),
    "pipecat_nodeflate": (
        "pipecat.transports.websocket.client against a server that declines "
        "permessage-deflate (not a client option): no compression, like ours"
    ),
}


def speech_pcm() -> bytes:
    """The bundled 16 kHz mono speech clip, trimmed to whole 20 ms chunks."""
    with wave.open(str(SPEECH)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    return pcm[: len(pcm) // CHUNK_BYTES * CHUNK_BYTES]


def pin(core: int | None) -> None:
    """Pin this process to ``core`` (ignored where affinity is not supported)."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return
    cores = os.sched_getaffinity(0)
    if core in cores:
        os.sched_setaffinity(0, {core})


def cores() -> tuple[int | None, int | None]:
    """(client core, server core): the last two cores, or no pinning on a 1-core machine."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return available[-2], available[-1]


def summarize(values: Iterable[float], digits: int = 4) -> dict[str, float]:
    """Median, min, max and spread (max - min) of ``values``."""
    v = sorted(values)
    if not v:
        return {}
    return {
        "median": round(statistics.median(v), digits),
        "min": round(v[0], digits),
        "max": round(v[-1], digits),
        "spread": round(v[-1] - v[0], digits),
        "n": len(v),
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    """``a / b`` rounded, or None when either is missing or ``b`` is 0."""
    if a is None or b in (None, 0):
        return None
    return round(a / b, digits)  # type: ignore[operator]


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a few seconds, small N (CI smoke test)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {RESULTS.relative_to(ROOT)}, "
        f"or {QUICK_RESULTS.relative_to(ROOT)} with --quick)",
    )
    return p


def out_dir(args: argparse.Namespace) -> Path:
    """Where a benchmark writes its JSON: ``--out``, else results/ (results/quick/ if quick)."""
    path = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    path.mkdir(parents=True, exist_ok=True)
    if path == QUICK_RESULTS:
        (path / ".gitignore").write_text("*\n")
    return path


def write_result(folder: Path, name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``folder/name.json`` (with machine facts) and return the path."""
    report = {
        "benchmark": name,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        **report,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def machine() -> dict[str, Any]:
    import platform

    try:
        import websockets

        ws_version = websockets.__version__
    except Exception:  # pragma: no cover
        ws_version = None
    try:
        from importlib.metadata import version

        pipecat_version = version("pipecat-ai")
    except Exception:  # pragma: no cover
        pipecat_version = None
    return {
        "loadavg_at_write": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pipecat": pipecat_version,
        "websockets": ws_version,
        "platform": platform.platform(),
    }


class ServerProcess:
    """``stream_server.py`` in its own process, pinned to ``core``.

    ``plain_port`` declines permessage-deflate; ``deflate_port`` accepts it
    (websockets' default, what most servers do).
    """

    def __init__(self, core: int | None = None):
        self.core = core
        self.proc: subprocess.Popen[str] | None = None
        self.plain_port = 0
        self.deflate_port = 0

    def __enter__(self) -> ServerProcess:
        cmd = [PY, str(BENCH / "stream_server.py")]
        if self.core is not None:
            cmd += ["--core", str(self.core)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("stream server did not start")
        info = json.loads(line)
        self.plain_port, self.deflate_port = info["plain_port"], info["deflate_port"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def uri_base(self, impl: str) -> str:
        """Where ``impl``'s sessions connect: the deflate-accepting port but for *_nodeflate."""
        port = self.plain_port if impl.endswith("nodeflate") else self.deflate_port
        return f"ws://127.0.0.1:{port}"

    @property
    def control_uri(self) -> str:
        return f"ws://127.0.0.1:{self.plain_port}/control"


def run_client(
    server: ServerProcess,
    impl: str,
    sessions: int,
    *,
    warmup: float,
    window: float,
    core: int | None,
    extra: Sequence[str] = (),
    timeout: float | None = None,
    on_steady: Any = None,
) -> dict[str, Any]:
    """Run ``stream_client.py`` in its own process and return its result.

    ``on_steady(pid, window)`` is called when the client's measuring window
    starts (the profiler attaches then).
    """
    cmd = [
        PY,
        str(BENCH / "stream_client.py"),
        "--impl",
        impl,
        "--sessions",
        str(sessions),
        "--uri-base",
        server.uri_base(impl),
        "--control",
        server.control_uri,
        "--warmup",
        str(warmup),
        "--window",
        str(window),
        *extra,
    ]
    if core is not None:
        cmd += ["--core", str(core)]
    if timeout is None:
        timeout = 60 + warmup + window + sessions * 0.1
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(proc.stdout,), daemon=True).start()
    result: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(
                    f"client {impl} N={sessions} took more than {timeout:.0f}s"
                ) from None
            if line is None:
                break
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "steady" and on_steady is not None:
                on_steady(event["pid"], event["window"])
            elif event.get("event") == "result":
                result = event
        proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if result is None:
        raise RuntimeError(f"client {impl} N={sessions} exited {proc.returncode} without a result")
    result.pop("event", None)
    return result
