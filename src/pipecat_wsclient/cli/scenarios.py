#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient test``: scripted calls against a bot, each turn checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from loguru import logger
from rich.console import Console

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.caller.builder import check_uri  # noqa: E402
from pipecat_wsclient.caller.hygiene import printable  # noqa: E402
from pipecat_wsclient.caller.limits import MAX_CONCURRENCY  # noqa: E402
from pipecat_wsclient.caller.signals import (  # noqa: E402
    bound_stops,
    run_stoppable,
    stop_on_signals,
    stopped_exit_code,
)
from pipecat_wsclient.cli.app import (  # noqa: E402
    app,
    err,
    quiet_logs,
    usage_error,
    warn_if_insecure,
)
from pipecat_wsclient.cli.options import (  # noqa: E402
    AllowEnvOption,
    AllowFactoriesOption,
    AllowOutsideFilesOption,
    AuthTokenOption,
    CafileOption,
    HeaderOption,
    InsecureOption,
    JsonReportOption,
    StopSilenceOption,
    VerboseOption,
    allowed_env,
    check_writable,
    parse_headers,
)
from pipecat_wsclient.errors import redact_uri  # noqa: E402
from pipecat_wsclient.protocols.registry import (  # noqa: E402
    get_protocol,
    protocol_names,
)

if TYPE_CHECKING:
    pass

# The banner is out of the way; importing this module must not silence
# Pipecat for the rest of the process (each command sets up logging itself).
logger.enable("pipecat")


@app.command("test")
def test_command(
    scenarios: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario files (YAML, ours or pipecat.evals files), or folders of them."
        ),
    ],
    uri: Annotated[
        str | None,
        typer.Option(
            help="The bot's endpoint (overrides the files' uri): ws:// or wss://, or a "
            "carrier bot's http(s):// webhook."
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help=f"Overrides the files' protocol: {', '.join(protocol_names())}."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Scenarios run at once.", min=1, max=MAX_CONCURRENCY)
    ] = 1,
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
        bool, typer.Option(metavar="", help="Transcribe every answer (off: only where expected).")
    ] = True,
    header: HeaderOption = None,
    allow_env: AllowEnvOption = None,
    allow_outside_files: AllowOutsideFilesOption = False,
    allow_factories: AllowFactoriesOption = False,
    cafile: CafileOption = None,
    insecure: InsecureOption = False,
    stop_silence_ms: StopSilenceOption = None,
    auth_token: AuthTokenOption = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            metavar="",
            help="Fail a scenario whose bot broke the carrier's rules (carrier_errors_max: 0 "
            "where a file sets none); without it they are only reported.",
        ),
    ] = False,
    as_json: JsonReportOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run scripted calls, or simulated callers, against a voice bot and check them.

    Each scenario file is one call: say (offline TTS), play, barge_in, dtmf,
    wait, listen and hangup turns, each with expectations (response_ms_max,
    transcript_contains, barge_in_ms_max, silent, bot_hangs_up, eval: judged
    by an LLM...); or a persona: an LLM caller with a goal holds the
    conversation and an LLM judge decides the goal and criteria (Pipecat's
    pipecat.evals; LLM factories run only with --allow-factories). A file
    reads ${VAR} from the environment only for the variables --allow-env
    names, and plays files outside its folder only with --allow-outside-files;
    the host a file names is shown before it is called. Exit codes: 0 every
    expectation held, 1 one failed, 2 usage, 3-7 as ``call`` when a call
    could not be made or was lost, 130 interrupted (SIGINT), 143 terminated
    (SIGTERM). A pipecat.evals file (a scenarios: list) runs as it is, against
    --uri: what needs the bot's internal events (its function calls, its own
    transcription) is reported as not observable from outside, never passed.
    """
    from pipecat_wsclient.scenario.evals_file import included_files
    from pipecat_wsclient.scenario.judging import check_llms, llm_endpoints
    from pipecat_wsclient.scenario.model import (
        Consent,
        ScenarioError,
        find_scenarios,
        load_scenarios,
    )
    from pipecat_wsclient.scenario.report import (
        scenario_table,
        simulation_table,
        suite_json,
        suite_summary,
        write_junit,
    )
    from pipecat_wsclient.scenario.run import (
        RunOptions,
        check_audio,
        check_voices,
        run_suite,
        suite_exit_code,
    )
    from pipecat_wsclient.scenario.speech import SpeechError, Transcriber

    bound_stops()
    quiet_logs(verbose)
    try:
        if protocol is not None:
            get_protocol(protocol)
        check_writable(junit, "--junit")
        consent = Consent(
            env=allowed_env(allow_env),
            outside_files=allow_outside_files,
            factories=allow_factories,
        )
        files = find_scenarios(scenarios)
        # A pipecat.evals file's shared blocks (judge:, user:) in the folder are no scenarios.
        fragments = included_files(files) - {p for p in scenarios if p.is_file()}
        loaded = [
            s for p in files if p not in fragments for s in load_scenarios(p, consent=consent)
        ]
        missing = [s.name for s in loaded if not (uri or s.uri)]
        if missing:
            raise ValueError(
                f"no uri for {', '.join(missing)}: give --uri (or 'uri:' in a scenario file "
                "of ours; a pipecat.evals file names no bot)"
            )
        for s in loaded:
            check_uri(uri or s.uri or "", protocol or s.protocol)
        check_audio(loaded)
        check_voices(loaded)
        options = RunOptions(
            uri=uri,
            protocol=protocol,
            headers=parse_headers(header),
            out_dir=out_dir,
            transcripts=transcripts,
            transcriber=Transcriber(model=stt_model),
            cafile=cafile,
            insecure=insecure,
            stop_silence_ms=stop_silence_ms,
            auth_token=auth_token,
            strict=strict,
        )
        needs_stt = transcripts or any(
            scenario.simulation is not None
            or any(turn.expect.needs_transcript for turn in scenario.turns)
            for scenario in loaded
        )
        # The persona's and the judge's LLMs answer, before any call is made.
        run_stoppable(check_llms(loaded))
        if needs_stt and options.transcriber is not None:
            # A model that cannot be loaded fails now, before any call.
            run_stoppable(options.transcriber.prepare())
    except (ScenarioError, ValueError, SpeechError) as e:
        raise usage_error(e) from None
    warn_if_insecure(insecure)
    for scenario in loaded:  # what a pipecat.evals file asks that a phone line does differently
        for note in scenario.notes:
            err.print(f"note: {printable(note)}", markup=False, highlight=False, soft_wrap=True)
    if uri is None:
        for scenario in loaded:  # a file you were sent names its host: you see it first
            err.print(
                f"calling {printable(redact_uri(scenario.uri or ''))} "
                f"(from scenario file {printable(scenario.path or scenario.name)})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    for scenario in loaded:  # where the conversation goes: shown before it does
        for block, endpoint in llm_endpoints(scenario):
            err.print(
                f"{printable(scenario.name)}: {block} LLM at {printable(redact_uri(endpoint))}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    console = Console() if Console().is_terminal else Console(width=150)

    def show(result):
        if not as_json:
            console.print(scenario_table(result))
            conversation = simulation_table(result)
            if conversation is not None:
                console.print(conversation)

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

    results = run_stoppable(main())
    if results is None:
        err.print("interrupted")
        raise typer.Exit(stopped_exit_code())
    if junit is not None:
        write_junit(junit, results)
    if as_json:
        print(suite_json(results))
    else:
        console.print(suite_summary(results))
    raise typer.Exit(suite_exit_code(results))
