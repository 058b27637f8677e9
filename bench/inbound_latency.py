"""Inbound added latency, ours and Pipecat's client side by side: server send -> pipeline.

The server (``stream_server.py``, another process) writes its send time
(``time.monotonic()``: CLOCK_MONOTONIC, one clock for all processes on
Linux) into the first 8 bytes of each 20 ms audio chunk, right before handing
it to the socket. In the client, a processor right after
``transport.input()`` takes ``time.monotonic()`` when the frame reaches it:
the difference is the latency added by the loopback socket, websockets, the
transport (deserialize, ``push_audio_frame``, the input's audio task) and one
Pipecat frame hop. Same both-ways workload as ``streams.py`` (the sessions
also stream out), at N=1 and N=100, one client process per implementation and
run. ``raw_websockets`` is the floor: a bare websockets client in its own
process taking the time as each message is received and parsed, no Pipecat.

Then per codec (``codec_latency.py``, the ``codecs`` section): a call leg as
Asterisk plays it, slin16 into a 16 kHz pipeline against ulaw and alaw at 8
kHz (and, in the full run, slin at 8 kHz and ulaw into 24 kHz): inbound
latency per sample and per frame, the frames' sizes and the echo's round
trip, and what the 8 kHz path adds over the same-rate one.

Usage::

    .venv/bin/python bench/inbound_latency.py [--sessions 1 100] [--repeats 3] [--quick]
        [--no-codecs]
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from typing import Any

import codec_latency
from benchlib import (
    BENCH,
    IMPL_NOTES,
    PY,
    ROOT,
    ServerProcess,
    cores,
    out_dir,
    parser,
    percentile,
    ratio,
    run_client,
    summarize,
    write_result,
)

GOAL_P99_MS = 2.0


async def raw_client(uri_base: str, control_uri: str, warmup: float, window: float) -> dict:
    """Receive stamped chunks with a bare websockets client (the floor)."""
    from pipecat.frames.protobufs import frames_pb2
    from websockets.asyncio.client import connect

    sid = f"raw-{time.monotonic_ns()}"
    latencies: list[float] = []
    async with (
        connect(control_uri, compression=None) as control,
        connect(f"{uri_base}/s/{sid}", compression=None) as ws,
    ):
        await control.send(json.dumps({"cmd": "go", "prefix": sid, "stamp": True}))
        await control.recv()
        record_from = time.monotonic() + warmup
        end = record_from + window
        while time.monotonic() < end:
            message = await ws.recv()
            now = time.monotonic()
            if now >= record_from:
                audio = frames_pb2.Frame.FromString(message).audio.audio
                sent = struct.unpack_from("<d", audio)[0]
                latencies.append(now - sent)
    lat = sorted(latencies)
    return {"latency_ms": latency_figures(lat), "samples": lat}


def latency_figures(lat: list[float]) -> dict[str, Any]:
    return {
        "count": len(lat),
        "p50": round(percentile(lat, 50) * 1000, 3),
        "p90": round(percentile(lat, 90) * 1000, 3),
        "p99": round(percentile(lat, 99) * 1000, 3),
        "max": round(lat[-1] * 1000, 3) if lat else None,
    }


def raw_in_subprocess(server: ServerProcess, warmup: float, window: float, core: Any) -> dict:
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
        "from benchlib import pin; pin(None if sys.argv[6] == 'None' else int(sys.argv[6]));"
        "from inbound_latency import raw_client;"
        "a = sys.argv;"
        "r = asyncio.run(raw_client(a[2], a[3], float(a[4]), float(a[5])));"
        "r.pop('samples'); print(json.dumps(r))"
    )
    out = subprocess.run(
        [
            PY,
            "-c",
            code,
            str(BENCH),
            f"ws://127.0.0.1:{server.plain_port}",
            server.control_uri,
            str(warmup),
            str(window),
            str(core),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60 + warmup + window,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--window", type=float, default=None)
    p.add_argument("--impls", nargs="+", default=["ours", "pipecat"])
    p.add_argument("--no-codecs", action="store_true", help="skip the per-codec section")
    args = p.parse_args()
    quick = args.quick
    sessions = args.sessions or ([1] if quick else [1, 100])
    repeats = args.repeats or (1 if quick else 3)
    window = args.window or (2.0 if quick else 12.0)
    warmup = 1.0 if quick else 2.0
    impls = ["ours", "pipecat"] if quick else args.impls
    client_core, server_core = cores()
    started = time.monotonic()
    runs: dict[str, dict[str, list[dict]]] = {}
    with ServerProcess(server_core) as server:
        raw = [raw_in_subprocess(server, warmup, window, client_core)]
        print(f"raw websockets: {raw[0]['latency_ms']}", flush=True)
        for n in sessions:
            runs[str(n)] = {impl: [] for impl in impls}
            reps = repeats if n == 1 else 1
            for rep in range(reps):
                for impl in impls if rep % 2 == 0 else impls[::-1]:
                    r = run_client(
                        server,
                        impl,
                        n,
                        warmup=warmup,
                        window=window if n == 1 else min(window, 5.0),
                        core=client_core,
                        extra=["--stamp"],
                    )
                    runs[str(n)][impl].append(r)
                    print(
                        f"N={n:4d} {impl:18s} latency {r['latency_ms']} "
                        f"in min={r['in_rate']['min']:.3f}",
                        flush=True,
                    )
        # The floor again, after: the host's noise may have changed meanwhile.
        raw.append(raw_in_subprocess(server, warmup, window, client_core))
    summary: dict[str, Any] = {
        "raw_websockets": {
            k: summarize((r["latency_ms"][k] for r in raw), 3) for k in ("p50", "p99")
        }
    }
    for n, by_impl in runs.items():
        summary[n] = {}
        for impl, rs in by_impl.items():
            summary[n][impl] = {
                k: summarize((r["latency_ms"][k] for r in rs), 3) for k in ("p50", "p90", "p99")
            }
            summary[n][impl]["samples"] = sum(r["latency_ms"]["count"] for r in rs)
            pooled = sorted(x / 1000 for r in rs for x in r.pop("latency_samples_ms", []))
            if pooled:
                summary[n][impl]["pooled"] = latency_figures(pooled)
            summary[n][impl]["in_rate_min"] = min(r["in_rate"]["min"] for r in rs)
            summary[n][impl]["sustained"] = all(r["sustained"] for r in rs)
        if "ours" in by_impl and "pipecat" in by_impl:
            summary[n]["ratio_ours_over_pipecat"] = {
                k: ratio(summary[n]["ours"][k]["median"], summary[n]["pipecat"][k]["median"])
                for k in ("p50", "p99")
            }
    if "1" in summary and "ours" in summary["1"]:
        ours1 = summary["1"]["ours"]
        p99 = ours1["pooled"]["p99"] if "pooled" in ours1 else ours1["p99"]["median"]
        summary["goal_ours_p99_n1_under_2ms"] = {
            "value_ms": p99,
            "over": "all samples of the N=1 runs pooled",
            "met": p99 < GOAL_P99_MS,
        }
    codecs = None
    if not args.no_codecs:
        codecs = codec_latency.run(
            quick=quick,
            impls=[i for i in impls if i in ("ours", "pipecat")],
            client_core=client_core,
            server_core=server_core,
        )
        summary["codecs"] = codecs.pop("summary")
    report = {
        "quick": quick,
        "config": {
            "sessions": sessions,
            "repeats": repeats,
            "window_s": window,
            "warmup_s": warmup,
            "client_core": client_core,
            "server_core": server_core,
            "clock": "time.monotonic (CLOCK_MONOTONIC, shared by processes on Linux)",
            "measured_at": "first processor after transport.input()",
            "impls": {i: IMPL_NOTES[i] for i in impls},
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": summary,
        "raw_websockets_runs": raw,
        "runs": runs,
        "codecs": codecs,
    }
    write_result(out_dir(args), "inbound_latency", report)


if __name__ == "__main__":
    sys.exit(main())
