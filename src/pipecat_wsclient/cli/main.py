#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient``: try the transport, call or test a WebSocket voice endpoint, serve one.

The typer app: each command checks its options, runs the module that does
the work (:mod:`.call`, :mod:`.load`, :mod:`.serve`) and shows the result
(:mod:`.render`). Exit codes are in :mod:`.result`. ``test`` runs
:mod:`pipecat_wsclient.scenario` (imported only when it runs).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from loguru import logger
from rich.console import Console
from rich.live import Live

try:  # typer vendors click from 0.25 on: the usage errors of the click it runs on
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - an older typer on the real click
    from click.exceptions import UsageError  # type: ignore[assignment]

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (_quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.caller.builder import check_uri  # noqa: E402
from pipecat_wsclient.caller.call import CallOptions, Progress, run_call  # noqa: E402
from pipecat_wsclient.caller.outcome import EXIT_INTERRUPTED, EXIT_USAGE  # noqa: E402
from pipecat_wsclient.caller.result import CallResult  # noqa: E402
from pipecat_wsclient.caller.signals import stop_on_signals  # noqa: E402
from pipecat_wsclient.cli.options import (  # noqa: E402
    CafileOption,
    CallerRateOption,
    CarrierOption,
    HeaderOption,
    InsecureOption,
    JsonReportOption,
    OpenTimeoutOption,
    ParamOption,
    ProtocolOption,
    ReconnectOption,
    SampleRateOption,
    ServedProtocolOption,
    VerboseOption,
    check_writable,
    parse_headers,
    parse_pairs,
)
from pipecat_wsclient.cli.render import (  # noqa: E402
    load_progress,
    load_table,
    progress_table,
    summary_table,
)
from pipecat_wsclient.protocols.registry import (  # noqa: E402
    get_protocol,
    make_serializer,
    or_list,
    protocol_names,
)
from pipecat_wsclient.serve.modes import MODES  # noqa: E402

if TYPE_CHECKING:
    from pipecat_wsclient.load.processes import ProcessLoad
    from pipecat_wsclient.load.run import LoadRun

# The banner is out of the way; importing this module must not silence
# Pipecat for the rest of the process (each command sets up logging itself).
logger.enable("pipecat")

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


async def _call(options: CallOptions, *, live: bool) -> CallResult:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        if not live:
            return await run_call(options, stop=stop)
        with Live(progress_table(Progress()), console=err, transient=True) as display:
            return await run_call(
                options, stop=stop, on_progress=lambda p: display.update(progress_table(p))
            )


def _finish(result: CallResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        Console().print(summary_table(result))
        if result.exit_code not in (0, 130):
            err.print(f"[red]error:[/] {result.error}")
    raise typer.Exit(result.exit_code)


def _warn_if_insecure(insecure: bool) -> None:
    if insecure:
        err.print("[yellow]warning:[/] TLS certificate verification is off (--insecure)")


def _usage_error(message: object) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


@app.command()
def call(
    uri: Annotated[str, typer.Argument(help="WebSocket endpoint, ws:// or wss://.")],
    protocol: ProtocolOption = "pipecat",
    play: Annotated[
        Path | None,
        typer.Option(help="WAV file to play (any rate/channels). Default: a bundled question."),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Write a stereo WAV: left sent, right heard.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG timeline of the call.")] = None,
    duration: Annotated[
        float | None,
        typer.Option(help="End the call this many seconds after connecting.", min=0.001),
    ] = None,
    listen: Annotated[
        float, typer.Option(help="Seconds to keep listening after the clip ends.", min=0)
    ] = 2.0,
    wait_greeting: Annotated[
        bool,
        typer.Option(
            "--wait-greeting",
            help="Let a bot that greets finish before playing the clip (or 5 s of silence).",
        ),
    ] = False,
    header: HeaderOption = None,
    carrier: CarrierOption = None,
    param: ParamOption = None,
    sample_rate: CallerRateOption = None,
    cafile: CafileOption = None,
    insecure: InsecureOption = False,
    open_timeout: OpenTimeoutOption = 5.0,
    reconnect: ReconnectOption = False,
    as_json: JsonReportOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Call a WebSocket voice endpoint: play a clip, record and measure the answer.

    Response latency is measured per turn, from the end of each utterance we
    play (energy-based end of speech) to the first audible answer audio at
    its playback time. The line streams 20 ms frames from connect to
    hang-up, as a carrier does: the clip, then silence. Ctrl-C ends the call
    cleanly and still writes the recording.

    Exit codes: 0 completed; 2 usage; 3 refused, DNS or network; 4 HTTP
    status; 5 TLS; 6 open timeout; 7 the bot closed the call abnormally or it
    dropped; 8 heard nothing from the bot; 130 interrupted.
    """
    _quiet_logs(verbose)
    try:
        headers = parse_headers(header)
        carrier_options, params = parse_pairs(carrier, "--carrier"), parse_pairs(param, "--param")
        check_uri(uri)
        make_serializer(protocol, sample_rate or 16000, carrier=carrier_options, params=params)
        check_writable(record, "--record")
        check_writable(plot, "--plot")
    except ValueError as e:
        raise _usage_error(e) from None
    _warn_if_insecure(insecure)
    options = CallOptions(
        carrier=carrier_options,
        params=params,
        uri=uri,
        protocol=protocol,
        play=play,
        record=record,
        plot=plot,
        duration=duration,
        listen=listen,
        wait_greeting=wait_greeting,
        headers=headers,
        sample_rate=sample_rate,
        cafile=cafile,
        insecure=insecure,
        open_timeout=open_timeout,
        reconnect=reconnect,
    )
    try:
        result = asyncio.run(_call(options, live=not as_json and err.is_terminal))
    except ValueError as e:
        raise _usage_error(e) from None
    _finish(result, as_json)


@app.command()
def serve(
    mode: Annotated[
        str, typer.Option(help="; ".join(f"{n}: {m.help}" for n, m in MODES.items()) + ".")
    ] = "echo",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    protocol: ServedProtocolOption = "pipecat",
    sample_rate: SampleRateOption = 16000,
    delay: Annotated[float, typer.Option(help="echo: seconds before sending back.")] = 0.0,
    latency: Annotated[
        float, typer.Option(help="tone: seconds from the end of an utterance to the answer.")
    ] = 0.3,
    tone_secs: Annotated[float, typer.Option(help="tone: length of the answer.")] = 0.6,
    output: Annotated[Path, typer.Option(help="record: WAV file to write.")] = Path("received.wav"),
    verbose: VerboseOption = False,
) -> None:
    """Serve a local test voice endpoint to try the client against (prints its URI)."""
    from pipecat_wsclient.serve.server import ServeOptions, run_server

    _quiet_logs(verbose)
    served = protocol_names(served=True)
    if mode not in MODES or protocol not in served:
        raise _usage_error(f"--mode is {or_list(MODES)}; --protocol is {or_list(served)}")
    options = ServeOptions(
        host=host,
        port=port,
        mode=mode,
        protocol=protocol,
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
def phone(
    uri: Annotated[str, typer.Argument(help="The bot's WebSocket endpoint, ws:// or wss://.")],
    protocol: ProtocolOption = "twilio",
    header: HeaderOption = None,
    carrier: CarrierOption = None,
    param: ParamOption = None,
    sample_rate: Annotated[
        int | None,
        typer.Option(help="Audio rate of the page and pipeline. Default: the carrier's own."),
    ] = None,
    cafile: CafileOption = None,
    insecure: InsecureOption = False,
    open_timeout: OpenTimeoutOption = 5.0,
    reconnect: ReconnectOption = False,
    port: Annotated[int, typer.Option(help="Local port of the page (0 picks a free one).")] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the page in a browser.")
    ] = False,
    save: Annotated[
        Path | None,
        typer.Option(help="Keep each call's recording and timeline here (N/recording.wav)."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Talk to your phone bot yourself: a browser page that plays the carrier.

    Serves a page on 127.0.0.1 and prints its address (``Phone page: URL``).
    Pressing Call there dials URI with the carrier's protocol, streams your
    microphone (echo cancellation on) to the bot and plays its answer, with
    live response latency, barge-ins, marks, clears and DTMF. Open the page
    with ``?call=1`` to dial without a click. Ctrl-C stops the server.
    """
    from pipecat_wsclient.cli.phone import run_phone
    from pipecat_wsclient.phone import PhoneOptions

    _quiet_logs(verbose)
    try:
        options = PhoneOptions(
            uri=uri,
            protocol=protocol,
            headers=parse_headers(header),
            carrier=parse_pairs(carrier, "--carrier"),
            params=parse_pairs(param, "--param"),
            sample_rate=sample_rate,
            cafile=cafile,
            insecure=insecure,
            open_timeout=open_timeout,
            reconnect=reconnect,
        )
        options.build_serializer()
        check_uri(uri)
    except ValueError as e:
        raise _usage_error(e) from None
    _warn_if_insecure(insecure)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            run_phone(options, port=port, folder=save, open_browser=not no_browser, say=say)
        )
    except OSError as e:
        raise _usage_error(f"cannot serve the phone page on port {port}: {e}") from None


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option(help="Where to write demo-call.wav and demo-call.png.")
    ] = Path("."),
    latency: Annotated[
        float, typer.Option(help="Answer latency of the embedded server, seconds.")
    ] = 0.3,
    as_json: JsonReportOption = False,
) -> None:
    """Run a whole call locally: an embedded voice server answers a bundled question.

    No network needed. Starts a tone-answering server on 127.0.0.1, calls it
    with our transport, shows live progress, then prints a summary and
    writes a stereo recording and a timeline plot.
    """
    from pipecat_wsclient.serve.server import ServeOptions, VoiceServer

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


@app.command()
def load(
    uri: Annotated[list[str], typer.Argument(help="Endpoint(s), used round robin.")],
    protocol: Annotated[
        str | None, typer.Option(help=f"Wire protocol: {', '.join(protocol_names())}.")
    ] = None,
    clip: Annotated[
        list[Path] | None,
        typer.Option(help="WAV to play per turn (repeatable, round robin). Default: bundled."),
    ] = None,
    calls: Annotated[int | None, typer.Option(help="Total calls to make.", min=1)] = 10,
    duration: Annotated[
        float | None,
        typer.Option(help="Keep starting calls for this many seconds instead.", min=0.001),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Most calls at once.", min=1)] = 10,
    ramp: Annotated[float, typer.Option(help="New calls per second.", min=0.001)] = 5.0,
    turns: Annotated[int, typer.Option(help="Turns per call.", min=1)] = 1,
    think: Annotated[
        float, typer.Option(help="Seconds of listening after each clip.", min=0)
    ] = 2.0,
    header: HeaderOption = None,
    sample_rate: CallerRateOption = None,
    open_timeout: OpenTimeoutOption = 5.0,
    reconnect: ReconnectOption = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report instead.")] = False,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Run this scenario file for every caller (its turns are checked; "
            "the report adds pass rate and barge-in percentiles)."
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            help="Spread the callers over this many worker processes (one event loop "
            "carries only so many: the report warns when it is saturated)."
        ),
    ] = 1,
) -> None:
    """Run many simulated callers against a WebSocket voice endpoint and report percentiles.

    Metrics (p50/p90/p95/p99/max): connect_ms, first_answer_ms, response_ms
    (per turn), underruns (gaps of 20 ms or more in answer audio), reconnects;
    errors by class (refused, http_NNN, timeout, tls, dropped). Thresholds
    name a statistic and a metric, e.g. p95_response_ms, p99_connect_ms,
    max_underruns, error_rate, or with --scenario pass_rate and
    p95_barge_in_ms. With --scenario, --protocol overrides the scenario's
    protocol only when given. Metric names are checked before the first call.

    Exit codes: 0 every call completed (or the failed ones within
    --max-error-rate) and no threshold crossed; 1 calls failed beyond
    --max-error-rate, or a threshold crossed; 2 usage; 130 interrupted (the
    report is still printed).
    """
    from pipecat_wsclient.load.plot import plot_report
    from pipecat_wsclient.load.run import LoadOptions, LoadRun, crossed, parse_threshold

    _quiet_logs(False)
    try:
        loaded = None
        if scenario is not None:
            from pipecat_wsclient.scenario.model import load_scenario

            loaded = load_scenario(scenario)
        for one in uri:
            check_uri(one)
        protocol = protocol or (loaded.protocol if loaded is not None else "pipecat")
        get_protocol(protocol)
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
        )
        if processes == 1:
            run: LoadRun | ProcessLoad = LoadRun(options)
        else:
            from pipecat_wsclient.load.processes import ProcessLoad

            run = ProcessLoad(options, processes)
    except ValueError as e:
        raise _usage_error(e) from None

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
        result = asyncio.run(main())
    except RuntimeError as e:  # a worker process failed (load_procs.WorkerFailed)
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    if report is not None:
        plot_report(report, result)
    failures = crossed(result, fail_if or [])
    if as_json:
        print(json.dumps({**result.as_dict(), "failed_thresholds": failures}, indent=2))
        for warning in result.warnings:
            err.print(f"[yellow]warning:[/] {warning}")
    else:
        Console().print(load_table(result))
    for line in failures:
        err.print(f"[red]threshold crossed:[/] {line}")
    if result.error_rate > max_error_rate:
        err.print(
            f"[red]calls failed:[/] {result.failed} of {result.calls} "
            f"(error rate {result.error_rate:.3g} > --max-error-rate {max_error_rate:g}): "
            + ", ".join(f"{n} {cls}" for cls, n in sorted(result.errors.items()))
        )
    if stop.is_set():
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(1 if failures or result.error_rate > max_error_rate else 0)


@app.command("test")
def test_command(
    scenarios: Annotated[
        list[Path], typer.Argument(help="Scenario files (YAML), or folders of them.")
    ],
    uri: Annotated[
        str | None, typer.Option(help="The bot's endpoint (overrides the files' uri).")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help=f"Overrides the files' protocol: {', '.join(protocol_names())}."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Scenarios run at once.")] = 1,
    junit: Annotated[
        Path | None, typer.Option(help="Write JUnit XML: one testcase per turn.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Where each scenario's stereo WAV and PNG timeline go."),
    ] = Path("scenario-results"),
    stt_model: Annotated[
        str | None,
        typer.Option(
            help="Whisper model for transcripts: a name (downloaded on first use) or a "
            "local folder. Default: $PIPECAT_WSCLIENT_STT_MODEL, else base.en."
        ),
    ] = None,
    transcripts: Annotated[
        bool, typer.Option(help="Transcribe every answer (off: only where expected).")
    ] = True,
    header: HeaderOption = None,
    cafile: CafileOption = None,
    insecure: InsecureOption = False,
    as_json: JsonReportOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run scripted calls against a voice bot and check each turn.

    Each scenario file is one call: say (offline TTS), play, barge_in, dtmf,
    wait, listen and hangup turns, each with expectations (response_ms_max,
    transcript_contains, barge_in_ms_max, silent, bot_hangs_up...). Exit
    codes: 0 every expectation held, 1 one failed, 2 usage, 3-7 as ``call``
    when a call could not be made or was lost.
    """
    from pipecat_wsclient.scenario.model import ScenarioError, find_scenarios, load_scenario
    from pipecat_wsclient.scenario.report import (
        scenario_table,
        suite_json,
        suite_summary,
        write_junit,
    )
    from pipecat_wsclient.scenario.run import RunOptions, run_suite, suite_exit_code
    from pipecat_wsclient.scenario.speech import Transcriber

    _quiet_logs(verbose)
    try:
        if protocol is not None:
            get_protocol(protocol)
        if concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        check_writable(junit, "--junit")
        loaded = [load_scenario(p) for p in find_scenarios(scenarios)]
        missing = [s.name for s in loaded if not (uri or s.uri)]
        if missing:
            raise ValueError(f"no uri for {', '.join(missing)}: set 'uri:' in the file or --uri")
        for one in {uri or s.uri for s in loaded}:
            check_uri(one or "")
        options = RunOptions(
            uri=uri,
            protocol=protocol,
            headers=parse_headers(header),
            out_dir=out_dir,
            transcripts=transcripts,
            transcriber=Transcriber(model=stt_model),
            cafile=cafile,
            insecure=insecure,
        )
    except (ScenarioError, ValueError) as e:
        raise _usage_error(e) from None
    _warn_if_insecure(insecure)
    console = Console() if Console().is_terminal else Console(width=150)

    def show(result):
        if not as_json:
            console.print(scenario_table(result))

    stop = asyncio.Event()

    async def main():
        with stop_on_signals(stop):
            suite = asyncio.create_task(
                run_suite(loaded, options, concurrency=concurrency, on_result=show)
            )
            halt = asyncio.create_task(stop.wait())
            await asyncio.wait([suite, halt], return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            if not suite.done():
                suite.cancel()
                await asyncio.gather(suite, return_exceptions=True)
                return None
            return suite.result()

    results = asyncio.run(main())
    if results is None:
        err.print("interrupted")
        raise typer.Exit(130)
    if junit is not None:
        write_junit(junit, results)
    if as_json:
        print(suite_json(results))
    else:
        console.print(suite_summary(results))
    raise typer.Exit(suite_exit_code(results))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (for tests and ``python -m``).

    A usage error (a wrong option or value) is one line on stderr, whatever
    the terminal's width, and exit 2.
    """
    try:
        code = app(args=argv, prog_name="pipecat-wsclient", standalone_mode=False)
    except UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "pipecat-wsclient"
        err.print(
            f"error: {e.format_message()} (see {where} --help)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_USAGE
    except typer.Abort:
        return EXIT_INTERRUPTED
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return 1
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
