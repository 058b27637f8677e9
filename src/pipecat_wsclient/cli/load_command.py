#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient load``: many callers, their percentiles, a CI gate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from loguru import logger
from rich.console import Console
from rich.live import Live

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.caller.builder import check_uri  # noqa: E402
from pipecat_wsclient.caller.hygiene import rounded  # noqa: E402
from pipecat_wsclient.caller.limits import (  # noqa: E402
    MAX_CALLS,
    MAX_CONCURRENCY,
    MAX_PROCESSES,
    MAX_RAMP,
    MAX_SECS,
    MAX_TURNS,
)
from pipecat_wsclient.caller.signals import (  # noqa: E402
    bound_stops,
    run_stoppable,
    stop_on_signals,
    stopped_exit_code,
)
from pipecat_wsclient.caller.webhook import check_webhook, is_webhook  # noqa: E402
from pipecat_wsclient.cli.app import (  # noqa: E402
    app,
    err,
    error_line,
    quiet_logs,
    usage_error,
)
from pipecat_wsclient.cli.options import (  # noqa: E402
    AllowEnvOption,
    AllowFactoriesOption,
    AllowOutsideFilesOption,
    AuthTokenOption,
    CallerRateOption,
    HeaderOption,
    OpenTimeoutOption,
    ReconnectOption,
    StopSilenceOption,
    StrictOption,
    allowed_env,
    check_writable,
    parse_headers,
)
from pipecat_wsclient.cli.render import (  # noqa: E402
    load_progress,
    load_table,
)
from pipecat_wsclient.protocols.registry import (  # noqa: E402
    get_protocol,
    protocol_names,
)

if TYPE_CHECKING:
    from pipecat_wsclient.load.processes import ProcessLoad
    from pipecat_wsclient.load.run import LoadRun

# The banner is out of the way; importing this module must not silence
# Pipecat for the rest of the process (each command sets up logging itself).
logger.enable("pipecat")


@app.command()
def load(
    uri: Annotated[
        list[str],
        typer.Argument(
            help="Endpoint(s), used round robin: ws:// or wss://, or with a carrier's "
            "--protocol the bot's http(s):// webhook (each call asks it, as the carrier does)."
        ),
    ],
    protocol: Annotated[
        str | None, typer.Option(help=f"Wire protocol: {', '.join(protocol_names())}.")
    ] = None,
    clip: Annotated[
        list[Path] | None,
        typer.Option(help="WAV to play per turn (repeatable, round robin). Default: bundled."),
    ] = None,
    calls: Annotated[
        int | None, typer.Option(help="Total calls to make.", min=1, max=MAX_CALLS)
    ] = 10,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Keep starting calls for this many seconds instead.", min=0.001, max=MAX_SECS
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Most calls at once.", min=1, max=MAX_CONCURRENCY)
    ] = 10,
    ramp: Annotated[
        float, typer.Option(help="New calls per second.", min=0.001, max=MAX_RAMP)
    ] = 5.0,
    turns: Annotated[int, typer.Option(help="Turns per call.", min=1, max=MAX_TURNS)] = 1,
    think: Annotated[
        float, typer.Option(help="Seconds of listening after each clip.", min=0, max=MAX_SECS)
    ] = 2.0,
    header: HeaderOption = None,
    sample_rate: CallerRateOption = None,
    open_timeout: OpenTimeoutOption = 5.0,
    reconnect: ReconnectOption = False,
    stop_silence_ms: StopSilenceOption = None,
    strict: StrictOption = False,
    auth_token: AuthTokenOption = None,
    fail_if: Annotated[
        list[str] | None,
        typer.Option(help="Exit 1 when crossed, e.g. 'p95_response_ms>1200', 'error_rate>0.01'."),
    ] = None,
    max_error_rate: Annotated[
        float,
        typer.Option(
            help="Failed calls allowed, as a fraction of all (0: any failed call exits 1).",
            min=0,
            max=1,
        ),
    ] = 0.0,
    report: Annotated[
        Path | None, typer.Option(help="Write a PNG: latency histogram, active calls over time.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print a JSON report instead.")
    ] = False,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Run this scenario file for every caller (its turns are checked; "
            "the report adds pass rate and barge-in percentiles)."
        ),
    ] = None,
    stt_model: Annotated[
        str | None,
        typer.Option(
            help="With --scenario: the Whisper model for its transcript checks, a name or a "
            "local folder. Default: $PIPECAT_WSCLIENT_STT_MODEL, else base.en."
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            help="Spread the callers over this many worker processes (one event loop "
            "carries only so many: the report warns when it is saturated).",
            min=1,
            max=MAX_PROCESSES,
        ),
    ] = 1,
    allow_env: AllowEnvOption = None,
    allow_outside_files: AllowOutsideFilesOption = False,
    allow_factories: AllowFactoriesOption = False,
) -> None:
    """Run many simulated callers against a WebSocket voice endpoint and report percentiles.

    Metrics (p50/p90/p95/p99/max): connect_ms, first_answer_ms, response_ms
    (per turn), overlap_ms (turns the bot began answering before our speech
    ended: an echo, a bot talking over us), barge_in_ms, underruns (gaps of
    20 ms or more in answer audio), reconnects;
    errors by class (refused, http_NNN, timeout, tls, dropped). Thresholds
    name a statistic and a metric, e.g. p95_response_ms, p99_connect_ms,
    max_underruns, error_rate, or with --scenario pass_rate and
    p95_barge_in_ms. With --scenario, --protocol overrides the scenario's
    protocol only when given. Metric names are checked before the first call.

    Exit codes: 0 every call completed (or the failed ones within
    --max-error-rate) and no threshold crossed; 1 calls failed beyond
    --max-error-rate, or a threshold crossed; 2 usage; 130 interrupted, 143
    terminated (the report is still printed, within 3 s).
    """
    from pipecat_wsclient.load.plot import plot_report
    from pipecat_wsclient.load.run import LoadOptions, LoadRun, crossed, parse_threshold
    from pipecat_wsclient.scenario.service_run import SpeechError

    bound_stops()
    quiet_logs(False)
    try:
        loaded = None
        if scenario is not None:
            from pipecat_wsclient.scenario.judging import check_llms
            from pipecat_wsclient.scenario.model import Consent, load_scenarios
            from pipecat_wsclient.scenario.run import check_audio, check_voices

            consent = Consent(
                env=allowed_env(allow_env),
                outside_files=allow_outside_files,
                factories=allow_factories,
            )
            found = load_scenarios(scenario, consent=consent)
            if len(found) != 1:
                names = ", ".join(s.name for s in found)
                raise ValueError(
                    f"{scenario}: holds {len(found)} scenarios ({names}); load runs one"
                )
            loaded = found[0]
            check_audio([loaded])
            check_voices([loaded])
            # A simulated caller's LLMs answer, before any call is made.
            run_stoppable(check_llms([loaded]))
        protocol = protocol or (loaded.protocol if loaded is not None else "pipecat")
        get_protocol(protocol)
        for one in uri:
            check_uri(one, protocol)
            if is_webhook(one):
                check_webhook(one, protocol, auth_token)
        for text in fail_if or []:
            parse_threshold(text)
        check_writable(report, "--report")
        options = LoadOptions(
            uris=uri,
            scenario=loaded,
            protocol=protocol,
            clips=list(clip or []),
            calls=None if duration and calls == 10 else calls,
            duration=duration,
            concurrency=concurrency,
            ramp=ramp,
            turns=turns,
            think=think,
            headers=parse_headers(header),
            sample_rate=sample_rate,
            open_timeout=open_timeout,
            reconnect=reconnect,
            stt_model=stt_model,
            stop_silence_ms=stop_silence_ms,
            strict=strict,
            auth_token=auth_token,
        )
        if loaded is not None:
            # A scenario's speech-to-text model that cannot load fails now, not per call.
            run_stoppable(LoadRun(options).prepare())
        if processes == 1:
            run: LoadRun | ProcessLoad = LoadRun(options)
        else:
            from pipecat_wsclient.load.processes import ProcessLoad

            run = ProcessLoad(options, processes)
    except (ValueError, SpeechError) as e:
        raise usage_error(e) from None

    stop = asyncio.Event()

    async def main():
        with stop_on_signals(stop):
            if as_json or not err.is_terminal:
                return await run.run(stop)
            with Live(load_progress(run), console=err, transient=True) as display:
                task = asyncio.create_task(run.run(stop))
                while not task.done():
                    display.update(load_progress(run))
                    await asyncio.sleep(0.5)
                return await task

    try:
        result = run_stoppable(main())
    except RuntimeError as e:  # a worker process failed (load_procs.WorkerFailed)
        error_line(e)
        raise typer.Exit(1) from None
    if report is not None:
        plot_report(report, result)
    failures = crossed(result, fail_if or [])
    if as_json:
        summary = rounded({**result.as_dict(), "failed_thresholds": failures})
        print(json.dumps(summary, indent=2))
        for warning in result.warnings:
            error_line(warning, "warning", "yellow")
    else:
        Console().print(load_table(result))
    for line in failures:
        error_line(line, "threshold crossed")
    if result.error_rate > max_error_rate:
        err.print(
            f"[red]calls failed:[/] {result.failed} of {result.calls} "
            f"(error rate {result.error_rate:.3g} > --max-error-rate {max_error_rate:g}): "
            + ", ".join(f"{n} {cls}" for cls, n in sorted(result.errors.items()))
        )
    if stop.is_set():
        raise typer.Exit(stopped_exit_code())
    raise typer.Exit(1 if failures or result.error_rate > max_error_rate else 0)
