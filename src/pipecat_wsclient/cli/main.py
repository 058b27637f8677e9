#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient``: try the transport, call any WebSocket voice endpoint, serve a test one."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from loguru import logger
from rich.console import Console
from rich.live import Live
from rich.table import Table

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (_quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.cli.call import (  # noqa: E402
    EXIT_USAGE,
    PROTOCOLS,
    CallOptions,
    CallResult,
    Progress,
    run_call,
)

app = typer.Typer(
    help="Pipecat WebSocket client transport: demo, call a voice endpoint, serve a test one.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _quiet_logs(verbose: bool) -> None:
    logger.enable("pipecat")
    logger.remove()
    # Failures are reported by us, in one line; Pipecat's own error logs only with --verbose.
    logger.add(sys.stderr, level="DEBUG" if verbose else "CRITICAL")


def _progress_table(p: Progress) -> Table:
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


def _parse_headers(items: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants K:V, got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def summary_table(result: CallResult) -> Table:
    """The end-of-call summary as a rich table."""
    table = Table(title=f"Call to {result.uri}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    status = {0: "completed", 130: "interrupted"}.get(result.exit_code, f"failed: {result.error}")
    table.add_row("result", status)
    table.add_row("connect time", _ms(result.connect_ms))
    for i, turn in enumerate(result.turns, 1):
        table.add_row(f"turn {i} response latency", _ms(turn["latency_ms"]))
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
    if result.record:
        table.add_row("recording", result.record)
    if result.plot:
        table.add_row("timeline", result.plot)
    return table


@contextmanager
def _ctrl_c_sets(event: asyncio.Event):
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, event.set)
        loop.add_signal_handler(signal.SIGTERM, event.set)
        installed = True
    except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)


async def _call(options: CallOptions, *, live: bool) -> CallResult:
    stop = asyncio.Event()
    with _ctrl_c_sets(stop):
        if not live:
            return await run_call(options, stop=stop)
        with Live(_progress_table(Progress()), console=err, transient=True) as display:
            return await run_call(
                options, stop=stop, on_progress=lambda p: display.update(_progress_table(p))
            )


def _finish(result: CallResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        Console().print(summary_table(result))
        if result.exit_code not in (0, 130):
            err.print(f"[red]error:[/] {result.error}")
    raise typer.Exit(result.exit_code)


@app.command()
def call(
    uri: Annotated[str, typer.Argument(help="WebSocket endpoint, ws:// or wss://.")],
    protocol: Annotated[
        str, typer.Option(help=f"Wire protocol: {', '.join(PROTOCOLS)}.")
    ] = "pipecat",
    play: Annotated[
        Path | None,
        typer.Option(help="WAV file to play (any rate/channels). Default: a bundled question."),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Write a stereo WAV: left sent, right heard.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG timeline of the call.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="End the call after this many seconds.")
    ] = None,
    listen: Annotated[
        float, typer.Option(help="Seconds to keep listening after the clip ends.")
    ] = 2.0,
    header: Annotated[
        list[str] | None, typer.Option(help="Handshake header K:V (repeatable).")
    ] = None,
    sample_rate: Annotated[int, typer.Option(help="Audio sample rate.")] = 16000,
    cafile: Annotated[
        Path | None, typer.Option(help="CA certificates (PEM) to verify a wss:// server.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Do not verify the server's TLS certificate (unsafe).")
    ] = False,
    open_timeout: Annotated[float, typer.Option(help="Seconds allowed to connect.")] = 5.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable report instead.")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show debug logs.")] = False,
) -> None:
    """Call a WebSocket voice endpoint: play a clip, record and measure the answer.

    Response latency is measured per turn, from the end of each utterance we
    play (energy-based end of speech) to the first audible answer audio at
    its playback time. Exit codes: 0 completed, 2 usage, 3 refused/DNS/
    network, 4 HTTP status, 5 TLS, 6 timeout, 7 connection lost, 130
    interrupted (Ctrl-C ends the call cleanly and still writes the recording).
    """
    _quiet_logs(verbose)
    if protocol not in PROTOCOLS:
        err.print(f"error: unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
        raise typer.Exit(EXIT_USAGE)
    try:
        headers = _parse_headers(header)
    except ValueError as e:
        err.print(f"error: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    if insecure:
        err.print("[yellow]warning:[/] TLS certificate verification is off (--insecure)")
    options = CallOptions(
        uri=uri,
        protocol=protocol,
        play=play,
        record=record,
        plot=plot,
        duration=duration,
        listen=listen,
        headers=headers,
        sample_rate=sample_rate,
        cafile=cafile,
        insecure=insecure,
        open_timeout=open_timeout,
    )
    try:
        result = asyncio.run(_call(options, live=not as_json and err.is_terminal))
    except ValueError as e:
        err.print(f"error: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    _finish(result, as_json)


@app.command()
def serve(
    mode: Annotated[
        str,
        typer.Option(
            help="echo: send back what arrives; tone: answer each utterance "
            "with a tone; record: write what arrives to a WAV."
        ),
    ] = "echo",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    protocol: Annotated[str, typer.Option(help="Wire protocol: pipecat or raw.")] = "pipecat",
    sample_rate: Annotated[int, typer.Option(help="Audio sample rate.")] = 16000,
    delay: Annotated[float, typer.Option(help="echo: seconds before sending back.")] = 0.0,
    latency: Annotated[
        float, typer.Option(help="tone: seconds from the end of an utterance to the answer.")
    ] = 0.3,
    tone_secs: Annotated[float, typer.Option(help="tone: length of the answer.")] = 0.6,
    output: Annotated[Path, typer.Option(help="record: WAV file to write.")] = Path("received.wav"),
    verbose: Annotated[bool, typer.Option(help="Show debug logs.")] = False,
) -> None:
    """Serve a local test voice endpoint to try the client against (prints its URI)."""
    from pipecat_wsclient.cli.serve import ServeOptions, run_server

    _quiet_logs(verbose)
    if mode not in ("echo", "tone", "record") or protocol not in ("pipecat", "raw"):
        err.print("error: --mode is echo, tone or record; --protocol is pipecat or raw")
        raise typer.Exit(EXIT_USAGE)
    options = ServeOptions(
        host=host,
        port=port,
        mode=mode,  # type: ignore[arg-type]
        protocol=protocol,  # type: ignore[arg-type]
        sample_rate=sample_rate,
        delay=delay,
        latency=latency,
        tone_secs=tone_secs,
        record_path=str(output),
    )
    try:
        asyncio.run(run_server(options))
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option(help="Where to write demo-call.wav and demo-call.png.")
    ] = Path("."),
    latency: Annotated[
        float, typer.Option(help="Answer latency of the embedded server, seconds.")
    ] = 0.3,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable report instead.")
    ] = False,
) -> None:
    """Run a whole call locally: an embedded voice server answers a bundled question.

    No network needed. Starts a tone-answering server on 127.0.0.1, calls it
    with our transport, shows live progress, then prints a summary and
    writes a stereo recording and a timeline plot.
    """
    from pipecat_wsclient.cli.serve import ServeOptions, VoiceServer

    _quiet_logs(False)
    out_dir.mkdir(parents=True, exist_ok=True)

    async def main() -> CallResult:
        server_options = ServeOptions(port=0, mode="tone", latency=latency)
        async with VoiceServer(server_options) as server:
            if not as_json:
                err.print(f"Embedded voice server (answers with a tone) on {server.uri}")
            options = CallOptions(
                uri=server.uri,
                record=out_dir / "demo-call.wav",
                plot=out_dir / "demo-call.png",
            )
            return await _call(options, live=not as_json and err.is_terminal)

    _finish(asyncio.run(main()), as_json)


def _load_table(report) -> Table:
    table = Table(title="Load test", show_header=True)
    table.add_column("metric", style="bold")
    for column in ("p50", "p90", "p95", "p99", "max", "n"):
        table.add_column(column, justify="right")
    for metric, values in report.metrics.items():
        cells = ["-" if values[k] is None else f"{values[k]:.0f}" for k in _LOAD_COLUMNS]
        table.add_row(metric, *cells, f"{values['count']:.0f}")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items())) or "none"
    table.caption = (
        f"{report.calls} calls, {report.completed} completed, {report.failed} failed "
        f"(error rate {report.error_rate:.1%}: {errors}) in {report.duration_secs:.1f} s"
    )
    return table


_LOAD_COLUMNS = ("p50", "p90", "p95", "p99", "max")


def _load_progress(run) -> Table:
    report = run.report()
    table = Table.grid(padding=(0, 2))
    connect = report.metrics["connect_ms"]
    response = report.metrics["response_ms"]
    table.add_row(
        f"active {run.active}",
        f"done {report.completed}",
        f"failed {report.failed}",
        f"connect p50/p95 {_ms(connect['p50'])}/{_ms(connect['p95'])}",
        f"response p50/p95 {_ms(response['p50'])}/{_ms(response['p95'])}",
    )
    return table


@app.command()
def load(
    uri: Annotated[list[str], typer.Argument(help="Endpoint(s), used round robin.")],
    protocol: Annotated[
        str, typer.Option(help=f"Wire protocol: {', '.join(PROTOCOLS)}.")
    ] = "pipecat",
    clip: Annotated[
        list[Path] | None,
        typer.Option(help="WAV to play per turn (repeatable, round robin). Default: bundled."),
    ] = None,
    calls: Annotated[int | None, typer.Option(help="Total calls to make.")] = 10,
    duration: Annotated[
        float | None, typer.Option(help="Keep starting calls for this many seconds instead.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Most calls at once.")] = 10,
    ramp: Annotated[float, typer.Option(help="New calls per second.")] = 5.0,
    turns: Annotated[int, typer.Option(help="Turns per call.")] = 1,
    think: Annotated[float, typer.Option(help="Seconds of listening after each clip.")] = 2.0,
    header: Annotated[
        list[str] | None, typer.Option(help="Handshake header K:V (repeatable).")
    ] = None,
    sample_rate: Annotated[int, typer.Option(help="Audio sample rate.")] = 16000,
    open_timeout: Annotated[float, typer.Option(help="Seconds allowed to connect.")] = 5.0,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(help="Exit 1 when crossed, e.g. 'p95_response_ms>1200', 'error_rate>0.01'."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a PNG: latency histogram, active calls over time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report instead.")] = False,
) -> None:
    """Run many simulated callers against a WebSocket voice endpoint and report percentiles.

    Metrics (p50/p90/p95/p99/max): connect_ms, first_answer_ms, response_ms
    (per turn), underruns (gaps of 20 ms or more in answer audio), reconnects;
    errors by class (refused, http_NNN, timeout, tls, dropped). Thresholds
    name a statistic and a metric, e.g. p95_response_ms, p99_connect_ms,
    max_underruns, or error_rate. Exit codes: 0 ok, 1 a --fail-if threshold
    crossed, 2 usage.
    """
    from pipecat_wsclient.cli.load import (
        LoadOptions,
        LoadRun,
        crossed,
        parse_threshold,
        plot_report,
    )

    _quiet_logs(False)
    if protocol not in PROTOCOLS:
        err.print(f"error: unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
        raise typer.Exit(EXIT_USAGE)
    try:
        for text in fail_if or []:
            parse_threshold(text)
        options = LoadOptions(
            uris=uri,
            protocol=protocol,
            clips=list(clip or []),
            calls=None if duration and calls == 10 else calls,
            duration=duration,
            concurrency=concurrency,
            ramp=ramp,
            turns=turns,
            think=think,
            headers=_parse_headers(header),
            sample_rate=sample_rate,
            open_timeout=open_timeout,
        )
        run = LoadRun(options)
    except ValueError as e:
        err.print(f"error: {e}")
        raise typer.Exit(EXIT_USAGE) from None

    async def main():
        stop = asyncio.Event()
        with _ctrl_c_sets(stop):
            if as_json or not err.is_terminal:
                return await run.run(stop)
            with Live(_load_progress(run), console=err, transient=True) as display:
                task = asyncio.create_task(run.run(stop))
                while not task.done():
                    display.update(_load_progress(run))
                    await asyncio.sleep(0.5)
                return await task

    result = asyncio.run(main())
    if report is not None:
        plot_report(report, result)
    failures = crossed(result, fail_if or [])
    if as_json:
        print(json.dumps({**result.as_dict(), "failed_thresholds": failures}, indent=2))
    else:
        Console().print(_load_table(result))
    for line in failures:
        err.print(f"[red]threshold crossed:[/] {line}")
    raise typer.Exit(1 if failures else 0)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (for tests and ``python -m``)."""
    try:
        app(args=argv, prog_name="pipecat-wsclient")
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
