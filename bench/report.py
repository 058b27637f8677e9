"""Write ``bench/results/README.md``: the tables of the side-by-side benchmarks, from their JSON.

Reads ``streams.json``, ``capacity.json``, ``pacing-<N>s.json`` (the longest
run), ``inbound_latency.json``, ``end_to_close.json``, ``profile.json`` and
``soak.json`` (ours only) in the results folder; a missing file leaves its
section out. Also checks the
project's goals against the numbers (met / not met).

Usage::

    .venv/bin/python bench/report.py [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from benchlib import RESULTS

GOAL_CPU_RATIO = 1 / 3
GOAL_RSS_RATIO = 0.5
GOAL_CAPACITY_RATIO = 4.0
GOAL_CPU_NS = ("150", "300")
GOAL_LATENCY_N100_MS = 20.0


def load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def longest_pacing(folder: Path) -> dict[str, Any] | None:
    files = sorted(
        folder.glob("pacing-*s.json"),
        key=lambda p: float(re.findall(r"pacing-(\d+)s", p.name)[0]),
    )
    return json.loads(files[-1].read_text()) if files else None


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def med(stats: dict[str, Any] | None, digits: int = 3, spread: bool = True) -> str:
    """``median (min-max)`` of a summarize() dict."""
    if not stats:
        return "-"
    text = num(stats.get("median"), digits)
    if spread and stats.get("n", 1) > 1:
        text += f" ({num(stats['min'], digits)}-{num(stats['max'], digits)})"
    return text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("**met**" if met else "**not met**")


def cpu_goal_row(streams: dict[str, Any], n: str) -> tuple[list[str], bool | None] | None:
    """The CPU goal at ``n`` streams: per stream-second if both keep up, else per audio second."""
    s = streams["summary"].get(n, {})
    r = s.get("ratio_ours_over_pipecat")
    if not r:
        return None
    ours_ok = s["ours"].get("sustained")
    theirs_ok = s["pipecat"].get("sustained")
    if ours_ok and theirs_ok:
        key, note = "cpu_per_stream", "both keep up: per stream-second"
    elif ours_ok:
        slowest = s["pipecat"]["out_rate"]["min"]["median"]
        key = "cpu_per_audio_s"
        note = (
            f"ours keeps all {n} streams in real time, Pipecat's does not (its slowest at "
            f"{num(slowest, 2)} of real time): per audio second moved"
        )
    else:
        key = "cpu_per_audio_s"
        note = (
            f"neither keeps all {n} streams in real time on one core (slowest stream: ours "
            f"{num(s['ours']['out_rate']['min']['median'], 2)}, Pipecat's "
            f"{num(s['pipecat']['out_rate']['min']['median'], 2)} of real time): per audio "
            "second moved"
        )
    # As the goal says: where Pipecat's does not keep up, per audio second moved.
    met: bool | None = r[key] <= GOAL_CPU_RATIO
    row = [
        f"CPU per real-time stream at N={n} <= 1/3 of Pipecat's",
        f"ratio {num(r[key], 2)} ({note}; per stream-second {num(r['cpu_per_stream'], 2)})",
        verdict(met),
    ]
    return row, met


def goals_section(
    streams: Any,
    capacity: Any,
    pacing: Any,
    latency: Any,
    soak: Any = None,
    load_accuracy: Any = None,
) -> tuple[str, list[tuple[str, bool | None]]]:
    rows: list[list[str]] = []
    out: list[tuple[str, bool | None]] = []
    if streams:
        for n in GOAL_CPU_NS:
            row = cpu_goal_row(streams, n)
            if row is not None:
                rows.append(row[0])
                out.append((f"cpu_{n}", row[1]))
        for n in GOAL_CPU_NS:
            r = streams["summary"].get(n, {}).get("ratio_ours_over_pipecat")
            if r and r.get("rss_per_session_kb") is not None:
                met = r["rss_per_session_kb"] <= GOAL_RSS_RATIO
                rows.append(
                    [
                        f"RSS per session at N={n} <= 1/2 of Pipecat's",
                        f"ratio {num(r['rss_per_session_kb'], 2)}",
                        verdict(met),
                    ]
                )
                out.append((f"rss_{n}", met))
    if capacity:
        r = capacity["summary"].get("ratio_ours_over_pipecat")
        o = capacity["summary"]["ours"]["max_sustained"]["median"]
        p = capacity["summary"]["pipecat"]["max_sustained"]["median"]
        met = r is not None and r >= GOAL_CAPACITY_RATIO
        nd = capacity["summary"].get("pipecat_nodeflate")
        nodeflate = (
            f" (Pipecat's without deflate {num(nd['max_sustained']['median'], 0)}: ratio "
            f"{num(capacity['summary'].get('ratio_ours_over_pipecat_nodeflate'), 2)})"
            if nd
            else ""
        )
        rows.append(
            [
                "Sessions sustained on one core >= 4x Pipecat's",
                f"ours {num(o, 0)}, Pipecat's {num(p, 0)}: ratio {num(r, 2)}{nodeflate}",
                verdict(met),
            ]
        )
        out.append(("capacity", met))
    if pacing:
        m = pacing["median"]["ours"]
        g = pacing["goals"]["ours"]
        secs = num(pacing["seconds"], 0)
        rows.append(
            [
                "Pacing: effective rate 1.00 +/- 0.5 % (N=1)",
                f"{num(m['effective_rate'], 5)} over {secs} s",
                verdict(g["effective_rate_1_00_pm_0_5pct"]),
            ]
        )
        rows.append(
            [
                "Pacing: end drift < 20 ms over 60 s",
                f"{num(m['end_drift_ms'], 2)} ms over {secs} s (with the lead counted: "
                f"{num(m['drift_naive_ms'], 2)} ms)",
                verdict(g["end_drift_under_20ms"] if pacing["seconds"] >= 60 else None)
                + ("" if pacing["seconds"] >= 60 else " (run is shorter than 60 s)"),
            ]
        )
        rows.append(
            [
                "Pacing: p99 inter-send gap within 5 ms of the chunk",
                f"p99 {num(m['p99_gap_ms'], 2)} ms for {num(m['chunk_ms'], 0)} ms chunks",
                verdict(g["p99_gap_within_5ms_of_chunk"]),
            ]
        )
        out += [(k, v) for k, v in g.items()]
    if latency and "goal_ours_p99_n1_under_2ms" in latency["summary"]:
        g = latency["summary"]["goal_ours_p99_n1_under_2ms"]
        rows.append(
            [
                "Inbound added latency p99 < 2 ms (N=1)",
                f"{num(g['value_ms'])} ms ({g.get('over', 'median of runs')}; raw websockets "
                f"floor p99 {med(latency['summary']['raw_websockets']['p99'])} ms)",
                verdict(g["met"]),
            ]
        )
        out.append(("latency", g["met"]))
    if latency and "100" in latency["summary"]:
        ours = latency["summary"]["100"]["ours"]
        p99 = ours["p99"]["median"] if "p99" in ours else None
        met = p99 is not None and p99 < GOAL_LATENCY_N100_MS
        rows.append(
            [
                "Inbound added latency p99 < 20 ms at N=100",
                f"{num(p99)} ms (Pipecat's: "
                f"{num(latency['summary']['100']['pipecat']['p99']['median'])} ms; ours kept up: "
                f"{num(ours.get('sustained'))})",
                verdict(met),
            ]
        )
        out.append(("latency_100", met))
    if load_accuracy:
        summary = load_accuracy["summary"]
        runs = {r["callers"]: r for r in load_accuracy["runs"]}
        r200 = runs.get(200)
        figures = (
            f"200 callers: response p99 {num(r200['response_ms']['p99'], 0)} ms against "
            f"{num(load_accuracy['config']['truth_ms'], 0)} ms, loop lag p99 "
            f"{num(r200['generator']['loop_lag_p99_ms'], 1)} ms, CPU "
            f"{num(r200['generator']['cpu_mean'], 2)}; "
            if r200
            else ""
        )
        rows.append(
            [
                "load: 200 two-turn callers per core, response p99 within 20 ms of the truth",
                f"{figures}most true: {num(summary['most_true_callers_per_core'])}",
                verdict(summary["goal_200_met"]),
            ]
        )
        out.append(("load_accuracy", summary["goal_200_met"]))
    if soak:
        v = soak["verdict"]
        met = None if v["flat"] is None else bool(v["flat"] and v["nothing_uncounted"])
        res, audio = soak["resources"], soak["audio"]
        rows.append(
            [
                "Soak, one call through restarts and interruptions: flat, nothing uncounted",
                f"{num(soak['run_s'] / 60, 1)} min: RSS "
                f"{num(res['rss_kb']['slope_per_min'], 1)} kB/min, tasks "
                f"{num(res['tasks']['slope_per_min'])}/min, fds "
                f"{num(res['fds']['slope_per_min'])}/min; unaccounted audio "
                f"{num(round(audio['unaccounted_s'], 3) + 0.0)} s of "
                f"{num(audio['produced_s'], 1)} s",
                verdict(met) + ("" if v["flat_judged"] else " (run too short to judge flat)"),
            ]
        )
        out.append(("soak", met))
    text = "## Goals\n\n" + table(["goal", "measured (ours)", ""], rows)
    return text, out


def min_med(rates: dict[str, Any]) -> str:
    """``min / median`` of per-stream rates (each the median over the runs)."""
    return f"{num(rates['min']['median'])} / {num(rates['median']['median'])}"


def streams_section(d: dict[str, Any]) -> str:
    rows = []
    for n, by in d["summary"].items():
        for impl, s in by.items():
            if impl.startswith("ratio"):
                continue
            if "error" in s:
                rows.append([n, impl, f"error: {s['error']}"] + ["-"] * 7)
                continue
            rows.append(
                [
                    n,
                    impl,
                    med(s["cpu_per_stream"], 4),
                    med(s["cpu_per_audio_s"], 4),
                    med(s["rss_per_session_kb"], 0),
                    min_med(s["out_rate"]),
                    min_med(s["in_rate"]),
                    num(s["sustained"]),
                    med(s["cpu_frac"], 2, spread=False),
                    med(s["server_cpu_frac"], 2, spread=False),
                ]
            )
        for key, r in by.items():
            if key.startswith("ratio_ours_over_"):
                rows.append(
                    [
                        n,
                        f"*ours / {key.removeprefix('ratio_ours_over_')}*",
                        num(r["cpu_per_stream"], 2),
                        num(r["cpu_per_audio_s"], 2),
                        num(r["rss_per_session_kb"], 2),
                    ]
                    + [""] * 5
                )
    c = d["config"]
    text = (
        "## Concurrent streams (`streams.py`)\n\n"
        f"N sessions in one client process (pinned to core {c['client_core']}), each streaming "
        "16 kHz mono in 20 ms chunks both ways against `stream_server.py` in another process "
        f"(core {c['server_core']}); measured for "
        + ", ".join(f"{w} s at N={n}" for n, w in c.get("window_s_by_n", {}).items())
        + f" after {c['warmup_s']} s of warm-up; median (min-max) of {c['repeats']} runs "
        "(1 run at N > 100). "
        "CPU per stream = client CPU seconds / (window x N); CPU per audio second = client CPU "
        "/ audio seconds actually moved (the comparable figure once streams fall below real "
        "time); rates are per stream, audio seconds moved per second, min / median over the "
        "streams; sustained = every stream >= 0.98 both ways.\n\n"
    )
    text += table(
        [
            "N",
            "impl",
            "CPU s/s per stream",
            "CPU per audio s",
            "RSS/session kB",
            "out rate min/med",
            "in rate min/med",
            "sustained",
            "client CPU",
            "server CPU",
        ],
        rows,
    )
    text += "\n" + "".join(f"- `{k}`: {v}\n" for k, v in c["impls"].items())
    return text


def capacity_section(d: dict[str, Any]) -> str:
    rows = []
    for impl, s in d["summary"].items():
        if impl.startswith("ratio"):
            continue
        runs = d["runs"][impl]
        steps = "; ".join(
            " ".join(f"{st['sessions']}{'+' if st['sustained'] else 'x'}" for st in r["steps"])
            for r in runs
        )
        failing = ", ".join("-" if f is None else str(f) for f in s["first_failing"])
        rows.append([impl, med(s["max_sustained"], 0), failing, steps])
    for key, r in d["summary"].items():
        if key.startswith("ratio_ours_over_"):
            rows.append([f"*ours / {key.removeprefix('ratio_ours_over_')}*", num(r, 2), "", ""])
    c = d["config"]
    return (
        "## Capacity on one core (`capacity.py`)\n\n"
        f"Largest N one client process pinned to one core sustains ({c['criterion']}); "
        f"N doubles from {c['start']}, then bisects ({c['resolution']}); {c['window_s']} s "
        f"per step after {c['warmup_s']} s of warm-up; {c['repeats']} search(es) per impl. "
        "Steps: `+` sustained, `x` not.\n\n"
        + table(["impl", "max sustained N", "first failing N", "steps"], rows)
    )


def pacing_section(d: dict[str, Any]) -> str:
    rows = []
    for impl, m in d["median"].items():
        sp = d.get("spread", {}).get(impl, {})
        rows.append(
            [
                impl,
                num(m["chunk_ms"], 0),
                med(sp.get("effective_rate"), 5) if sp else num(m["effective_rate"], 5),
                med(sp.get("end_drift_ms"), 2) if sp else num(m["end_drift_ms"], 2),
                num(m.get("drift_naive_ms"), 2),
                med(sp.get("p99_gap_ms"), 2) if sp else num(m["p99_gap_ms"], 2),
                num(m["median_gap_ms"], 2),
            ]
        )
    return (
        f"## Pacing, one stream, {num(d['seconds'], 0)} s (`pacing.py`)\n\n"
        "Arrival times at a local server, default params (40 ms chunks). End drift: last "
        "arrival vs the schedule (first arrival + audio before it - lead); naive drift counts "
        f"the lead in. Median (min-max) of {d['repeats']} run(s).\n\n"
        + table(
            [
                "impl",
                "chunk ms",
                "effective rate",
                "end drift ms",
                "naive drift ms",
                "p99 gap ms",
                "median gap ms",
            ],
            rows,
        )
    )


def latency_section(d: dict[str, Any]) -> str:
    s = d["summary"]
    rows = [
        [
            "1",
            "raw websockets (floor)",
            med(s["raw_websockets"]["p50"]),
            "-",
            med(s["raw_websockets"]["p99"]),
            "-",
            "-",
        ]
    ]
    for n in d["config"]["sessions"]:
        by = s.get(str(n), {})
        for impl, v in by.items():
            if impl.startswith("ratio"):
                continue
            rows.append(
                [
                    str(n),
                    impl,
                    med(v["p50"]),
                    med(v["p90"]),
                    med(v["p99"]),
                    num(v["pooled"]["p99"]) if "pooled" in v else "-",
                    f"{v['samples']} / {num(v['in_rate_min'])}",
                ]
            )
        r = by.get("ratio_ours_over_pipecat")
        if r:
            rows.append(
                [str(n), "*ours / pipecat*", num(r["p50"], 2), "", num(r["p99"], 2), "", ""]
            )
    return (
        "## Inbound added latency (`inbound_latency.py`)\n\n"
        "Server send (stamped in the audio, CLOCK_MONOTONIC) to the first processor after "
        "`transport.input()`, ms; sessions also stream out; median (min-max) over "
        f"{d['config']['repeats']} runs at N=1 (pooled p99: over all their samples), 1 run at "
        "N=100; the raw floor was measured before and after.\n\n"
        + table(
            ["N", "impl", "p50 ms", "p90 ms", "p99 ms", "pooled p99 ms", "samples / min in rate"],
            rows,
        )
    )


def close_section(d: dict[str, Any]) -> str:
    rows = []
    for impl, v in d["summary"].items():
        if impl.startswith("ratio"):
            continue
        rows.append(
            [
                impl,
                med(v["close_seen_ms"], 2),
                med(v["pipeline_done_ms"], 2),
                ", ".join(map(str, v["close_codes"])),
            ]
        )
    rows.append(["*ours / pipecat*", num(d["summary"]["ratio_ours_over_pipecat"], 2), "", ""])
    return (
        "## EndFrame to close (`end_to_close.py`)\n\n"
        "EndFrame queued (no audio queued, `audio_out_end_silence_secs=0`) until the server "
        f"sees the connection closed, and until the runner returns; median (min-max) of "
        f"{d['config']['repeats']} runs.\n\n"
        + table(["impl", "close seen ms", "pipeline done ms", "close code"], rows)
    )


PROFILE_COLUMNS = [
    ("deflate (incl.)", "inclusive_pct", "deflate"),
    ("client module + websockets (incl.)", "inclusive_pct", "client_module_plus_websockets"),
    ("BaseOutputTransport (incl.)", "inclusive_pct", "base_output_transport"),
    (
        "BaseOutputTransport without client (incl.)",
        "inclusive_pct",
        "base_output_transport_excluding_client",
    ),
    ("frame/pipeline machinery (own)", "owner_pct", "frame_machinery"),
    ("serializer (own)", "owner_pct", "serializer"),
    ("event loop + epoll (own)", "owner_pct", "event_loop+event_loop_poll"),
]


def profile_section(d: dict[str, Any]) -> str:
    rows = []
    for impl, prof in d["profiles"].items():
        row = [impl, num(prof["run"]["sessions"]), num(prof["cpu_frac"], 2)]
        for _, kind, key in PROFILE_COLUMNS:
            value = sum(prof[kind].get(k, 0.0) for k in key.split("+"))
            row.append(f"{value:.1f}")
        rows.append(row)
    owner_keys: list[str] = []
    for prof in d["profiles"].values():
        owner_keys += [k for k in prof["owner_pct"] if k not in owner_keys]
    owner_rows = [
        [impl] + [f"{prof['owner_pct'].get(k, 0.0):.1f}" for k in owner_keys]
        for impl, prof in d["profiles"].items()
    ]
    method = next(iter(d["profiles"].values()))["method"]
    return (
        f"## CPU profile (`profile.py`, {method})\n\n"
        f"N={d['config']['sessions']} sessions of the streams workload, "
        f"{num(d['config']['seconds'], 0)} s sampled at {d['config']['rate_hz']} Hz; % of "
        "the samples (of the process's CPU). *incl.*: samples with a frame in the group "
        "anywhere on the stack; *own*: each sample counted once for the innermost frame of "
        "a group (standard library attributed to its caller).\n\n"
        + table(
            ["impl", "N", "client CPU"] + [c[0] for c in PROFILE_COLUMNS],
            rows,
        )
        + "\nEvery sample once (own, %):\n\n"
        + table(["impl", *owner_keys], owner_rows)
    )


NOTES = """## Reading these numbers

- Run-to-run spread on this kind of machine (a 2-core VM) is about +/-10 % for CPU
  figures: differences smaller than the min-max ranges shown are noise.
- Pipecat's client saturates one core at about 50-80 sessions (it varies between runs
  here), ours at about 120-150 (see capacity), so N=150 sits at the edge of ours: some
  runs keep every stream at 0.98 of real time or more, some fall just short. Where a
  client does not keep up, "CPU per stream" is just the saturated core divided by N;
  CPU per audio second moved is then the comparable figure, as the goals say. At
  N=300 neither keeps up: those rows show what overload looks like (Pipecat's client
  collapses to a few % of real time; ours keeps receiving in real time and sends at a
  quarter of it), not a cost per stream.
- When ours falls behind, received audio that is already waiting goes into the
  pipeline as one frame (`coalesce.py`): its cost per audio second falls as the load
  rises, which is why its inbound rate holds at N=300.
- Most of the client's CPU is Pipecat's own per-frame machinery, the same for both
  clients (frame processors' queues and tasks, observers and their proxy tasks, the
  frames pushed downstream). Ours pushes written audio downstream gathered into
  0.1 s frames (`audio_out_downstream_secs`) instead of one per chunk, and avoids what
  the transport itself
  adds in Pipecat's: a task per chunk for `BaseOutputTransport`'s `wait_for`-wrapped
  queue reads and writes, `BaseInputTransport`'s audio queue and task, the protobuf
  serializer's per-call reflection, permessage-deflate; see the profile.
- The raw websockets "floor" of the latency table is a bare client in an otherwise
  idle process, which wakes up slower than a busy one: it is a reference, not a strict
  lower bound.
- `machine.loadavg_at_write` in each JSON tells whether the machine was shared.
"""


def soak_section(d: dict[str, Any]) -> str:
    p, th, ev, res, audio, v = (
        d["params"],
        d["thresholds"],
        d["events"],
        d["resources"],
        d["audio"],
        d["verdict"],
    )

    def row(name: str, key: str, unit: str, limit: float | None, digits: int = 3) -> list[str]:
        r = res[key]
        return [
            name,
            num(r["start"]),
            num(r["after_warmup"]),
            num(r["end"]),
            f"{num(r['min'])}-{num(r['max'])}",
            num(r["slope_per_min"], digits),
            "-" if limit is None else f"< {num(limit, 1)} {unit}/min",
        ]

    resources = table(
        ["", "start", "after warm-up", "end", "range after warm-up", "slope per min", "flat if"],
        [
            row("RSS kB", "rss_kb", "kB", th["rss_slope_max_kb_per_min"], 1),
            row("asyncio tasks", "tasks", "tasks", th["task_slope_max_per_min"]),
            row("open fds", "fds", "fds", th["fd_slope_max_per_min"]),
            row("Python objects", "objects", "", None, 0),
        ],
    )

    def secs(value: float) -> str:
        return num(round(value, 3) + 0.0)  # no "-0.000"

    census = res.get("objects_after_gc")
    if census:
        warmup = p["warmup_s"]
        own_rows = sum(1 for r in d["samples"]["rows"] if r[0] >= warmup)
        resources += (
            f"\nPython objects after a full collection (`gc.collect()`, so garbage not yet "
            f"collected does not count): {census['after_warmup']} after warm-up, "
            f"{census['end']} at the end, {census['growth']:+d}, of which {own_rows} are the "
            "benchmark's own sample rows (a list each).\n"
        )
    back = ev["reconnected_after_server_back_ms"]
    events = table(
        [
            "restarts (graceful / abort)",
            "reconnected",
            "interruptions (reached server)",
            "reconnects",
            "reconnected after server back, median / max ms",
            "max downtime s",
            "errors",
        ],
        [
            [
                f"{ev['restarts']} ({ev['graceful_restarts']} / {ev['abort_restarts']})",
                num(ev["restarts_reconnected"]),
                f"{ev['interruptions']} ({ev['interruptions_received_by_server']})",
                num(ev["reconnects"]),
                f"{num(back['median'], 1)} / {num(back['max'], 1)}",
                num(ev["max_downtime_s"], 2),
                num(len(ev["connection_errors"]) + len(ev["pipeline_errors"])),
            ]
        ],
    )
    accounting = table(
        [
            "produced s",
            "received by server s",
            "dropped s",
            "interrupted s",
            "lost in TCP at aborts s",
            "lost at graceful restarts / end s",
            "unaccounted s",
            "client books s",
        ],
        [
            [
                secs(audio["produced_s"]),
                secs(audio["received_by_server_s"]),
                secs(audio["dropped_s"]),
                secs(audio["interrupted_s"]),
                secs(audio["lost_in_tcp_at_aborts_s"]),
                f"{secs(audio['lost_after_send_at_graceful_restarts_s'])} / "
                f"{secs(audio['lost_after_send_at_end_s'])}",
                secs(audio["unaccounted_s"]),
                secs(audio["client_unaccounted_s"]),
            ]
        ],
    )
    flat = {True: "yes", False: "**no**", None: "not judged (run too short)"}[v["flat"]]
    code = ""
    if d.get("code", {}).get("commit"):
        modified = d["code"].get("modified") or []
        code = f"; `pipecat_wsclient` at commit {d['code']['commit'][:7]}" + (
            f" with {len(modified)} file(s) changed locally" if modified else ""
        )
    return (
        "## Soak: one call through restarts and interruptions (`soak.py`, ours only)\n\n"
        f"One call of {num(d['run_s'] / 60, 1)} min with our transport (default params but "
        "`add_wav_header=False` and no end silence) against a server in the same process on "
        "127.0.0.1, "
        f"restarted every {num(p['restart_every_s'], 0)} s on the same port (graceful 1012 "
        f"and TCP abort in turn, down for {p['outage_s'][0]}-{p['outage_s'][1]} s), an "
        f"`InterruptionFrame` every {num(p['interrupt_every_s'], 0)} s (+/- 20 %), "
        f"TTS-like audio the whole time ({p['feed']}), echoed back by the server; seed "
        f"{p['seed']}{code}. Sampled every {num(p['sample_every_s'], 1)} s; slopes by least "
        f"squares after {num(p['warmup_s'], 0)} s of warm-up (tasks and fds are the call's "
        "and the server's, not the benchmark's own).\n\n"
        + resources
        + "\n"
        + events
        + "\nDowntime is the outage plus the wait for the next attempt of the backoff (50 ms, "
        f"then doubling, capped at 1 s); audio produced meanwhile is held, up to "
        f"{num(p['buffer_audio_secs'], 0)} s (`buffer_audio_secs`), and what does not fit "
        f"is dropped and counted: {secs(audio['dropped_s'])} s in this run.\n\n"
        + "Audio: the client's books (produced = sent + dropped + interrupted) and the wire "
        "(sent but never read by the server, measured at each restart while both ends are "
        "frozen). Bytes already in the kernel when the TCP connection is aborted are the one "
        "loss the client cannot see (README, Reconnection): counted apart; unaccounted = "
        "produced - received - dropped - interrupted - that.\n\n"
        + accounting
        + f"\nVerdict: flat {flat}; nothing uncounted "
        f"{'yes' if v['nothing_uncounted'] else '**no**'} (within one "
        f"{num(p['chunk_s'] * 1000, 0)} ms chunk); survived "
        f"{'yes' if v['survived'] else '**no**'} (every restart reconnected, no error, "
        "ended by the EndFrame).\n"
    )


def load_accuracy_section(d: dict[str, Any]) -> str:
    c = d["config"]
    rows = []
    for r in d["runs"]:
        g, resp = r["generator"], r["response_ms"]
        rows.append(
            [
                str(r["callers"]),
                f"{num(resp['p50'], 0)} / {num(resp['p99'], 0)} / {num(resp['max'], 0)}",
                num(r["p99_error_ms"], 0),
                num(r["underruns"]["p99"], 0),
                num(g.get("loop_lag_p99_ms"), 1),
                num(g.get("cpu_mean"), 2),
                num(g.get("gc_full_collections")),
                str(len(r["warnings"])),
                num(r["true"]),
            ]
        )
    return (
        "## The load tool's own limit (`load_accuracy.py`)\n\n"
        f"`pipecat-wsclient load` pinned to one core, in one process, against `serve --mode "
        f"tone --latency 0.3` on the other core: the server answers each utterance exactly "
        f"{num(c['truth_ms'], 0)} ms after it ends. N callers of {c['turns']} turns each (the "
        f"bundled clip), ramp {num(c['ramp'], 0)}/s. True = response p99 within "
        f"{num(c['tolerance_ms'], 0)} ms of the truth, no failed call. Most true: "
        f"{num(d['summary']['most_true_callers_per_core'])} callers per core.\n\n"
        + table(
            [
                "callers",
                "response p50 / p99 / max ms",
                "p99 error ms",
                "underruns p99",
                "loop lag p99 ms",
                "CPU",
                "full GCs",
                "warnings",
                "true",
            ],
            rows,
        )
    )


def phone_section(d: dict[str, Any]) -> str:
    """The browser phone's mouth-to-bot legs, browser and Python page side by side."""
    names = {
        "page_to_server": "page capture -> our server",
        "server_to_wire": "our server -> sent to the bot",
        "wire_to_bot": "sent -> the bot's pipeline",
        "total": "mouth to bot",
    }

    def cell(stats: dict[str, Any]) -> str:
        return f"{num(stats['median'], 1)} ({num(stats['min'], 1)}-{num(stats['max'], 1)})"

    rows = [
        [name, cell(d["legs_ms"][leg]), cell(d["baseline_legs_ms"][leg])]
        for leg, name in names.items()
    ]
    return (
        "## Browser phone: mouth to bot (`phone_latency.py`)\n\n"
        f"{len(d['calls'])} calls as {d['protocol']} from headless Chromium (fake microphone: "
        "a WAV file) through `pipecat-wsclient phone` to the test phone bot, and, alternately "
        "in the same run, the same calls from a page written in Python that sends the same "
        "20 ms chunks from memory (the baseline). The question's voice onset is timed at each "
        "step with one rule (a 20 ms chunk above -40 dBFS after 0.5 s below), on the wall "
        "clock. Milliseconds, median (min-max).\n\n"
        + table(["leg", "browser page", "Python page (baseline)"], rows)
        + f"\nWhat the page and our server add (capture to sent): median "
        f"{num(d['page_adds_ms']['median'], 1)} ms against the baseline's "
        f"{num(d['baseline_adds_ms']['median'], 1)} ms; 20 ms of each is the page's 20 ms "
        "chunk. The last leg is the bot's own (Pipecat's serializer and its stream "
        "resampler, which releases audio in bursts), the same for any caller: it varies with "
        "where the onset falls in its bursts.\n"
    )


def build(folder: Path) -> str:
    streams = load(folder, "streams")
    capacity = load(folder, "capacity")
    pacing = longest_pacing(folder)
    latency = load(folder, "inbound_latency")
    close = load(folder, "end_to_close")
    profile = load(folder, "profile")
    soak = load(folder, "soak")
    phone = load(folder, "phone_latency")
    machine = next(
        (
            d["machine"]
            for d in (streams, capacity, latency, close, profile)
            if d and "machine" in d
        ),
        {},
    )
    parts = [
        "# Benchmarks: pipecat-wsclient vs Pipecat's client, side by side\n\n"
        "Generated by `bench/report.py` from the JSON files in this folder (each written by "
        "the benchmark of the same name; `bench/run_all.py` runs them all). Every benchmark "
        "runs both implementations on the same workload in the same run: `ours` is "
        "`pipecat_wsclient`, `pipecat` is `pipecat.transports.websocket.client` (Pipecat "
        f"{machine.get('pipecat', '?')}, websockets {machine.get('websockets', '?')}, Python "
        f"{machine.get('python', '?')}, {machine.get('cpus', '?')} CPUs). Pipecat's client "
        "offers permessage-deflate by default and the benchmark server accepts it, as "
        "websockets' and most servers do, so its traffic is compressed (`pipecat`); "
        "`pipecat_nodeflate` is the same client against a listener that declines it. Ours "
        "does not offer compression by default.\n"
    ]
    load_acc = load(folder, "load_accuracy")
    goals, _ = goals_section(streams, capacity, pacing, latency, soak, load_acc)
    parts.append(goals)
    parts.append(NOTES)
    if streams:
        parts.append(streams_section(streams))
    if capacity:
        parts.append(capacity_section(capacity))
    if pacing:
        parts.append(pacing_section(pacing))
    if latency:
        parts.append(latency_section(latency))
    if close:
        parts.append(close_section(close))
    if profile:
        parts.append(profile_section(profile))
    if soak:
        parts.append(soak_section(soak))
    if load_acc:
        parts.append(load_accuracy_section(load_acc))
    if phone:
        parts.append(phone_section(phone))
    return "\n".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args()
    text = build(args.results)
    path = args.results / "README.md"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
