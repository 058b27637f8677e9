#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``pipecat-wsclient``: try the transport, call or test a WebSocket voice endpoint, serve one.

The typer app (:mod:`.app`): each command checks its options before any
call, runs the package that does the work (:mod:`pipecat_wsclient.caller`,
:mod:`pipecat_wsclient.load`, :mod:`pipecat_wsclient.serve`,
:mod:`pipecat_wsclient.scenario`) and shows the result (:mod:`.render`). This
module holds ``call``, ``serve``, ``phone`` and ``demo``; ``load`` and
``test`` are in :mod:`.load_command` and :mod:`.scenarios`. The exit
codes are one table: :data:`pipecat_wsclient.caller.outcome.EXIT_TABLE`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from loguru import logger

try:  # typer vendors click from 0.25 on: the usage errors of the click it runs on
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - an older typer on the real click
    from click.exceptions import UsageError  # type: ignore[assignment]

# Pipecat logs a banner when it is imported (below): not for a command line,
# whose logging is set up per command (quiet_logs).
logger.disable("pipecat")

from pipecat_wsclient.audio.wav import read_wav  # noqa: E402
from pipecat_wsclient.caller.builder import check_uri, resolve_rate  # noqa: E402
from pipecat_wsclient.caller.call import CallOptions, bundled_clip  # noqa: E402
from pipecat_wsclient.caller.hygiene import printable  # noqa: E402
from pipecat_wsclient.caller.limits import MAX_SECS, RATE_MAX, RATE_MIN  # noqa: E402
from pipecat_wsclient.caller.outcome import EXIT_USAGE  # noqa: E402
from pipecat_wsclient.caller.result import CallResult  # noqa: E402
from pipecat_wsclient.caller.signals import (  # noqa: E402
    Interrupted,
    bound_stops,
    exit_after_signal,
    guard_process,
    interruptible,
    run_stoppable,
    stopped_exit_code,
)
from pipecat_wsclient.caller.webhook import check_webhook, is_webhook  # noqa: E402
from pipecat_wsclient.cli.app import (  # noqa: E402
    app,
    call_live,
    err,
    finish,
    quiet_logs,
    usage_error,
    warn_if_insecure,
)
from pipecat_wsclient.cli.options import (  # noqa: E402
    AuthTokenOption,
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
    StopSilenceOption,
    StrictOption,
    VerboseOption,
    check_writable,
    parse_headers,
    parse_pairs,
    stop_silence_secs,
)
from pipecat_wsclient.protocols.registry import (  # noqa: E402
    make_serializer,
    or_list,
    protocol_names,
)
from pipecat_wsclient.serve.answerer import DEFAULT_ANSWER  # noqa: E402
from pipecat_wsclient.serve.modes import BOT_MODE, BOT_PROTOCOLS, MODE_HELP  # noqa: E402

if TYPE_CHECKING:
    pass

# The banner is out of the way; importing this module must not silence
# Pipecat for the rest of the process (each command sets up logging itself).
logger.enable("pipecat")


@app.command()
def call(
    uri: Annotated[
        str,
        typer.Argument(
            help="WebSocket endpoint, ws:// or wss://; or, with a carrier's --protocol, "
            "the bot's http(s):// webhook (dialed as the carrier does)."
        ),
    ],
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
        typer.Option(
            help="End the call this many seconds after connecting.", min=0.001, max=MAX_SECS
        ),
    ] = None,
    listen: Annotated[
        float,
        typer.Option(help="Seconds to keep listening after the clip ends.", min=0, max=MAX_SECS),
    ] = 2.0,
    wait_greeting: Annotated[
        bool,
        typer.Option(
            "--wait-greeting",
            metavar="",
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
    stop_silence_ms: StopSilenceOption = None,
    auth_token: AuthTokenOption = None,
    strict: StrictOption = False,
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
    dropped; 8 heard nothing from the bot; 9 --strict: the bot broke the
    carrier's rules; 130 interrupted (SIGINT), 143
    terminated (SIGTERM): within 3 s, the report still written.
    """
    bound_stops()
    quiet_logs(verbose)
    try:
        headers = parse_headers(header)
        carrier_options, params = parse_pairs(carrier, "--carrier"), parse_pairs(param, "--param")
        check_uri(uri, protocol)
        if is_webhook(uri):
            check_webhook(uri, protocol, auth_token)
        make_serializer(protocol, sample_rate or 16000, carrier=carrier_options, params=params)
        check_writable(record, "--record")
        check_writable(plot, "--plot")
        # The clip is read (and its header checked) now: a bad one fails before dialing.
        clip = read_wav(play or bundled_clip(), resolve_rate(protocol, sample_rate))
    except ValueError as e:
        raise usage_error(e) from None
    warn_if_insecure(insecure)
    options = CallOptions(
        carrier=carrier_options,
        params=params,
        uri=uri,
        protocol=protocol,
        play=play,
        audio=clip,
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
        stop_silence=stop_silence_secs(stop_silence_ms),
        auth_token=auth_token,
        strict=strict,
    )
    try:
        result = run_stoppable(call_live(options, live=not as_json and err.is_terminal))
    except ValueError as e:
        raise usage_error(e) from None
    finish(result, as_json)


@app.command()
def serve(
    mode: Annotated[
        str, typer.Option(help="; ".join(f"{n}: {h}" for n, h in MODE_HELP.items()) + ".")
    ] = "echo",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    protocol: Annotated[
        str,
        typer.Option(
            help=f"Wire protocol: {or_list(protocol_names(served=True))}; "
            f"with --mode bot {or_list(BOT_PROTOCOLS)}."
        ),
    ] = "pipecat",
    sample_rate: SampleRateOption = 16000,
    delay: Annotated[
        float, typer.Option(help="echo: seconds before sending back.", min=0, max=MAX_SECS)
    ] = 0.0,
    latency: Annotated[
        float,
        typer.Option(
            help="tone: seconds from the end of an utterance to the answer.", min=0, max=MAX_SECS
        ),
    ] = 0.3,
    tone_secs: Annotated[
        float, typer.Option(help="tone: length of the answer.", min=0.02, max=60)
    ] = 0.6,
    output: Annotated[Path, typer.Option(help="record: WAV file to write.")] = Path("received.wav"),
    answer: Annotated[
        str, typer.Option(help="bot: what it says to each utterance (DTMF: 'You pressed ...').")
    ] = DEFAULT_ANSWER,
    verbose: VerboseOption = False,
) -> None:
    """Serve a local test voice endpoint to try the client against (prints its URI).

    --mode bot is a phone bot on a carrier's protocol, built on Pipecat as its
    telephony examples build one: it answers each utterance 0.5 s after its
    end, reads DTMF back, and stops when talked over (needs the test extra).
    """
    quiet_logs(verbose)
    if mode == BOT_MODE:
        _serve_bot(host=host, port=port, protocol=protocol, answer=answer)
        return
    from pipecat_wsclient.serve.server import ServeOptions, run_server

    served = protocol_names(served=True)
    if mode not in MODE_HELP or protocol not in served:
        raise usage_error(
            f"--mode is {or_list(MODE_HELP)}; --protocol is {or_list(served)}"
            f" ({or_list(BOT_PROTOCOLS)} with --mode bot)"
        )
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
    except OSError as e:  # a busy port, an address that is not this machine's
        cause = e.strerror or str(e)
        raise usage_error(f"cannot serve on {host}:{port}: {cause}") from None
    except KeyboardInterrupt:
        pass


def _serve_bot(*, host: str, port: int, protocol: str, answer: str) -> None:
    """``serve --mode bot``: check eSpeak NG and the options, then answer calls until Ctrl-C."""
    from pipecat_wsclient.scenario.espeak import EspeakTTSService, EspeakUnavailable
    from pipecat_wsclient.serve.answerer import AnswerOptions
    from pipecat_wsclient.serve.bot import BotOptions, run_bot

    try:
        EspeakTTSService()  # loads eSpeak NG once, so a missing one fails before listening
    except EspeakUnavailable:
        raise usage_error(
            '--mode bot speaks with eSpeak NG: pip install "pipecat-wsclient[test]"'
        ) from None
    try:
        options = BotOptions(
            tts_factory=EspeakTTSService,
            host=host,
            port=port,
            protocol=protocol,
            answer=AnswerOptions(answer=answer),
        )
    except ValueError as e:
        raise usage_error(e) from None
    try:
        asyncio.run(run_bot(options))
    except OSError as e:  # a busy port, an address that is not this machine's
        cause = e.strerror or str(e)
        raise usage_error(f"cannot serve on {host}:{port}: {cause}") from None
    except KeyboardInterrupt:
        pass


@app.command()
def phone(
    uri: Annotated[
        str,
        typer.Argument(
            help="The bot's WebSocket endpoint, ws:// or wss://; or, with a carrier's "
            "--protocol, its http(s):// webhook (asked at each call, as the carrier does)."
        ),
    ],
    protocol: ProtocolOption = "twilio",
    header: HeaderOption = None,
    carrier: CarrierOption = None,
    param: ParamOption = None,
    sample_rate: Annotated[
        int | None,
        typer.Option(
            help="Audio rate of the page and pipeline. Default: the carrier's own.",
            min=RATE_MIN,
            max=RATE_MAX,
        ),
    ] = None,
    cafile: CafileOption = None,
    insecure: InsecureOption = False,
    open_timeout: OpenTimeoutOption = 5.0,
    reconnect: ReconnectOption = False,
    stop_silence_ms: StopSilenceOption = None,
    port: Annotated[int, typer.Option(help="Local port of the page (0 picks a free one).")] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", metavar="", help="Do not open the page in a browser.")
    ] = False,
    save: Annotated[
        Path | None,
        typer.Option(help="Keep each call's recording and timeline here (N/recording.wav)."),
    ] = None,
    auth_token: AuthTokenOption = None,
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

    quiet_logs(verbose)
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
            stop_silence=stop_silence_secs(stop_silence_ms),
            auth_token=auth_token,
        )
        options.build_serializer()
        check_uri(uri, protocol)
        if is_webhook(uri):
            check_webhook(uri, protocol, auth_token)
    except ValueError as e:
        raise usage_error(e) from None
    warn_if_insecure(insecure)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            run_phone(options, port=port, folder=save, open_browser=not no_browser, say=say)
        )
    except OSError as e:
        raise usage_error(f"cannot serve the phone page on port {port}: {e}") from None


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option(help="Where to write demo-call.wav and demo-call.png.")
    ] = Path("."),
    latency: Annotated[
        float,
        typer.Option(help="Answer latency of the embedded server, seconds.", min=0, max=60),
    ] = 0.3,
    as_json: JsonReportOption = False,
) -> None:
    """Run a whole call locally: an embedded voice server answers a bundled question.

    No network needed. Starts a tone-answering server on 127.0.0.1, calls it
    with our transport, shows live progress, then prints a summary and
    writes a stereo recording and a timeline plot.
    """
    from pipecat_wsclient.serve.server import ServeOptions, VoiceServer

    bound_stops()
    quiet_logs(False)
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
            return await call_live(options, live=not as_json and err.is_terminal)

    finish(run_stoppable(main()), as_json)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (for tests and ``python -m``).

    A usage error (a wrong option or value) is one line on stderr, whatever
    the terminal's width, and exit 2. A signal outside a call (while a model
    loads, while the options are checked) is exit 130 (SIGINT) or 143 (SIGTERM).
    """
    try:
        with interruptible():
            code = app(args=argv, prog_name="pipecat-wsclient", standalone_mode=False)
    except Interrupted as e:
        err.print("interrupted", markup=False, highlight=False)
        return e.exit_code
    except UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "pipecat-wsclient"
        err.print(
            f"error: {printable(e.format_message())} (see {where} --help)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_USAGE
    except typer.Abort:
        return stopped_exit_code()
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return 1
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point.

    After SIGINT or SIGTERM the process ends as soon as the command has
    written its report: no worker thread (a transcription) is waited for.
    """
    guard_process()
    code = main()
    exit_after_signal(code)
    sys.exit(code)


# The other commands register themselves on the app when imported.
from pipecat_wsclient.cli import load_command, scenarios  # noqa: E402, F401
