#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the commands show on a terminal: rich tables for calls and load runs.

Pure functions from results to ``rich`` renderables; the commands print them
or hand them to a ``rich.live.Live`` view. Text the far end wrote (a close
reason, an error built from one) goes in as plain ``Text``, never as markup,
with its control characters escaped (:func:`plain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from pipecat_wsclient.caller.hygiene import printable
from pipecat_wsclient.caller.outcome import carrier_rules_summary
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE

if TYPE_CHECKING:
    from pipecat_wsclient.caller.call import Progress
    from pipecat_wsclient.caller.result import CallResult
    from pipecat_wsclient.load.processes import ProcessLoad
    from pipecat_wsclient.load.run import LoadReport, LoadRun

LOAD_COLUMNS = ("p50", "p90", "p95", "p99", "max")
"""The statistics of each metric in the load table."""


def plain(text: object) -> Text:
    """``text`` as a table cell or title: not read as markup, control characters escaped."""
    return Text(printable(text))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def progress_table(p: Progress) -> Table:
    """One line of live call progress: state, time, audio sent and heard, ping, reconnects."""
    table = Table.grid(padding=(0, 2))
    rtt = "-" if p.ping_rtt_ms is None else f"{p.ping_rtt_ms:.1f} ms"
    table.add_row(
        f"[bold]{p.state}[/]",
        f"{p.elapsed:5.1f} s",
        f"sent {p.sent_secs:5.2f} s",
        f"heard {p.heard_secs:5.2f} s",
        f"ping {rtt}",
        f"reconnects {p.reconnects}",
    )
    return table


def describe_end(end: dict[str, Any]) -> str:
    """How a call ended, in words: ``by the bot (close 1000)``."""
    who = str(end.get("by"))
    by = {"caller": "by us", "bot": "by the bot", "network": "the connection dropped"}.get(who, who)
    code, reason = end.get("code"), end.get("reason")
    close = "" if code is None else f" (close {code}{': ' + reason if reason else ''})"
    return by + close


def summary_table(result: CallResult) -> Table:
    """The end-of-call summary as a rich table."""
    table = Table(title=plain(f"Call to {result.uri}"), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    status = {0: "completed", 130: "interrupted", 143: "terminated"}.get(
        result.exit_code, f"failed: {result.error}"
    )
    table.add_row("result", plain(status))
    if result.end:
        table.add_row("ended", plain(describe_end(result.end)))
    table.add_row("connect time", _ms(result.connect_ms))
    for i, turn in enumerate(result.turns, 1):
        overlap = turn.get("overlap_ms")
        if turn["latency_ms"] is None and overlap is not None:
            value = f"-{_ms(overlap)} (an overlap: the bot began before our speech ended)"
            table.add_row(f"turn {i} response latency", value)
        else:
            table.add_row(f"turn {i} response latency", _ms(turn["latency_ms"]))
    for b in result.barge_ins:
        clear = "" if b["clear_ms"] is None else f" (clear after {_ms(b['clear_ms'])})"
        table.add_row(
            f"barge-in at {b['onset_s']:.2f} s",
            f"far end stopped after {_ms(b['barge_in_ms'])}{clear}",
        )
    table.add_row(
        "response latency p50 / p95",
        f"{_ms(result.latency_p50_ms)} / {_ms(result.latency_p95_ms)}",
    )
    rate = "-" if result.pacing_rate is None else f"{result.pacing_rate:.3f}x real time"
    table.add_row("pacing", rate)
    table.add_row("audio sent / heard", f"{result.sent_secs:.2f} s / {result.heard_secs:.2f} s")
    table.add_row("bytes out / in", f"{result.bytes_out} / {result.bytes_in}")
    rtt = "-" if result.ping_rtt_ms is None else f"{result.ping_rtt_ms:.2f} ms"
    table.add_row("ping RTT", rtt)
    table.add_row(
        "errors",
        f"{result.decode_errors} decode, {result.dropped_frames} dropped, "
        f"{result.reconnects} reconnects, {result.interruptions} interruptions",
    )
    if result.carrier_errors:  # the carrier's rules the bot broke (issue 26)
        table.add_row("carrier rules broken", plain(carrier_rules_summary(result.carrier_errors)))
    if result.record:
        table.add_row("recording", plain(result.record))
    if result.plot:
        table.add_row("timeline", plain(result.plot))
    return table


def load_table(report: LoadReport) -> Table:
    """The load run's percentiles per metric, with calls and errors as the caption."""
    table = Table(title="Load test", show_header=True)
    table.add_column("metric", style="bold")
    for column in (*LOAD_COLUMNS, "n"):
        table.add_column(column, justify="right")
    for metric, values in report.metrics.items():
        cells = ["-" if values[k] is None else f"{values[k]:.0f}" for k in LOAD_COLUMNS]
        table.add_row(metric, *cells, f"{values['count']:.0f}")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items())) or "none"
    lines = [
        f"{report.calls} calls, {report.completed} completed, {report.failed} failed "
        f"(error rate {report.error_rate:.1%}: {errors}) in {report.duration_secs:.1f} s"
    ]
    if report.pass_rate is not None:
        failed = ", ".join(f"{k} x{v}" for k, v in report.expectations_failed.items()) or "none"
        lines.append(
            f"scenario passed in {report.scenarios_passed}/{report.calls} calls "
            f"(pass rate {report.pass_rate:.1%}); failed expectations: {failed}"
        )
    lines += [f"note: {note}" for note in report.notes]
    sim = report.simulation
    if sim:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(sim["ended_by"].items())) or "none"
        scores = "; ".join(
            f"{name} {_score(m['mean'])} (min {_score(m['min'])}, passed {m['passed']}"
            f"/{sim['callers']})"
            for name, m in sim["metrics"].items()
            if m["kind"] != NOT_OBSERVABLE
        )
        lines.append(
            f"simulated callers: {sim['goals_reached']}/{sim['callers']} reached their goal, "
            f"{sim['passed']} passed; ended by {ended}" + (f"; scores: {scores}" if scores else "")
        )
    g = report.generator
    if g.get("samples"):
        lines.append(
            f"load generator: CPU mean {_share(g['cpu_mean'])}, max {_share(g['cpu_max'])} "
            f"of a core; event-loop lag p50/p99/max {_ms(g['loop_lag_p50_ms'])}/"
            f"{_ms(g['loop_lag_p99_ms'])}/{_ms(g['loop_lag_max_ms'])}"
        )
    caption = Text("\n".join(printable(line) for line in lines))
    if report.warnings:
        caption.append("\nfigures not trustworthy: ", style="bold yellow")
        caption.append(printable("; ".join(report.warnings)))
    table.caption = caption
    return table


def _share(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def load_progress(run: LoadRun | ProcessLoad) -> Table:
    """One line of live load progress: active, done, failed, percentiles so far."""
    report = run.report()
    table = Table.grid(padding=(0, 2))
    connect = report.metrics["connect_ms"]
    response = report.metrics["response_ms"]
    recent = run.health.recent()
    table.add_row(
        f"active {run.active}",
        f"done {report.completed}",
        f"failed {report.failed}",
        f"connect p50/p95 {_ms(connect['p50'])}/{_ms(connect['p95'])}",
        f"response p50/p95 {_ms(response['p50'])}/{_ms(response['p95'])}",
        f"generator CPU {_share(recent.cpu_mean)}, loop lag p99 {_ms(recent.lag_p99_ms)}",
    )
    warnings = run.health.warnings(recent=True)
    if warnings:
        table.add_row(Text.assemble(("warning: ", "bold yellow"), printable("; ".join(warnings))))
    return table


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
