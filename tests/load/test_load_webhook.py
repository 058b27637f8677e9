"""``load`` dialing through the bot's webhook, as the carrier does (issue 26, items 1-3).

Each call of a load run asks the webhook for the stream with ids of its own;
signed with the auth token (``--auth-token`` or ``$TWILIO_AUTH_TOKEN``) when
given, also in the worker processes of ``--processes``, which get it on
stdin, never on their command line. The bots: one that validates Twilio's
signature (``support/webhook_bot.py``) and Pipecat's development runner
(``support/runner_bots.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import psutil
import pytest

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.cli.main import main
from pipecat_wsclient.load.processes import options_json
from pipecat_wsclient.load.run import LoadOptions, LoadRun
from support.commands import cli
from support.plain_bot import tone
from support.webhook_bot import signed_bot

TOKEN = "s3cret-token"


def clip(folder: Path) -> Path:
    path = folder / "q.wav"
    write_wav(path, tone(0.5, 300.0), 8000)
    return path


def assert_each_call_asked_the_webhook(bot: dict, calls: int) -> None:
    """Every call: a signed webhook request with its own CallSid, and a signed stream
    whose ``start`` carries that CallSid and the answer's parameter."""
    assert [ok for ok, _ in bot["webhook"]] == [True] * calls, bot["webhook"]
    assert bot["stream"] == [True] * calls
    sids = [form["CallSid"] for _, form in bot["webhook"]]
    assert len(set(sids)) == calls and all(s.startswith("CA") for s in sids), sids
    assert sorted(start["callSid"] for start in bot["starts"]) == sorted(sids)
    assert len({start["streamSid"] for start in bot["starts"]}) == calls
    assert all(start["customParameters"] == {"customer": "42"} for start in bot["starts"])


@pytest.mark.parametrize("given", ["option", "environment"])
async def test_every_call_of_a_load_run_asks_the_webhook_signed(tmp_path, monkeypatch, given):
    pytest.importorskip("twilio")
    if given == "environment":
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    else:
        monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    async with signed_bot(TOKEN) as bot:
        run = LoadRun(
            LoadOptions(
                uris=[bot["url"]],
                protocol="twilio",
                clips=[clip(tmp_path)],
                calls=3,
                concurrency=3,
                ramp=50,
                think=0.3,
                auth_token=TOKEN if given == "option" else None,
            )
        )
        report = await run.run()
    assert (report.calls, report.completed) == (3, 3), [r.error for r in run.results]
    assert_each_call_asked_the_webhook(bot, 3)
    for result in run.results:
        assert result.uri.startswith("ws://127.0.0.1:"), result.uri
        assert any("webhook" in note for note in result.notes), result.notes


def test_the_token_goes_to_the_workers_on_stdin_and_is_never_shown() -> None:
    options = LoadOptions(uris=["http://127.0.0.1:9/voice"], protocol="twilio", auth_token=TOKEN)
    assert json.loads(options_json(options))["auth_token"] == TOKEN
    assert TOKEN not in repr(options)


@pytest.mark.parametrize(
    ("protocol", "extra", "says"),
    [
        ("exotel", [], "--protocol exotel has no webhook"),
        ("pipecat", [], "--protocol pipecat has no webhook"),
        ("telnyx", ["--auth-token", TOKEN], "telnyx's signatures are not made here"),
    ],
)
def test_a_webhook_load_cannot_make_is_a_usage_error_before_any_call(
    capsys, protocol, extra, says
) -> None:
    code = main(["load", "http://127.0.0.1:9/voice", "--protocol", protocol, *extra])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert TOKEN not in err


@pytest.mark.slow  # the command and its two worker processes
async def test_load_processes_2_signs_every_call_and_no_command_line_holds_the_token(tmp_path):
    pytest.importorskip("twilio")
    seen_workers: dict[int, list[str]] = {}

    async def watch_workers(url: str) -> None:
        """The command lines of this run's workers (their parent's names the bot's URL)."""
        while True:
            for proc in psutil.process_iter(["cmdline"]):
                cmdline = proc.info["cmdline"] or []
                if "pipecat_wsclient.load.worker" not in cmdline:
                    continue
                with contextlib.suppress(psutil.Error, AttributeError):
                    if url in proc.parent().cmdline():
                        seen_workers[proc.pid] = cmdline
            await asyncio.sleep(0.1)

    async with signed_bot(TOKEN) as bot:
        watcher = asyncio.create_task(watch_workers(bot["url"]))
        try:
            code, out, err = await cli(
                "load", bot["url"], "--protocol", "twilio", "--auth-token", TOKEN,
                "--processes", "2", "--calls", "4", "--concurrency", "4", "--ramp", "20",
                "--clip", str(clip(tmp_path)), "--think", "0.3", "--json",
                timeout=120,
            )  # fmt: skip
        finally:
            watcher.cancel()
    assert code == 0, err
    report = json.loads(out)
    assert report["completed"] == 4 and report["generator"]["processes"] == 2, report
    assert_each_call_asked_the_webhook(bot, 4)
    assert len(seen_workers) == 2, seen_workers
    assert not any(TOKEN in arg for cmdline in seen_workers.values() for arg in cmdline)
    assert TOKEN not in out and TOKEN not in err


@pytest.mark.slow  # Pipecat's development runner in a subprocess
async def test_load_dials_the_runner_bot_through_its_webhook_with_fresh_ids(tmp_path):
    from support.runner_bots import runner_available, runner_bot

    runner_available()
    with runner_bot() as bot:
        code, out, err = await cli(
            "load", f"http://127.0.0.1:{bot.port}/", "--protocol", "twilio",
            "--calls", "3", "--concurrency", "3", "--ramp", "10",
            "--clip", str(clip(tmp_path)), "--think", "2", "--json",
            timeout=120,
        )  # fmt: skip
        connections = bot.wait_connections(3)
        calls = bot.call_data()
    assert code == 0, err
    report = json.loads(out)
    assert (report["calls"], report["completed"]) == (3, 3), report["errors"]
    # The runner's webhook answers wss://None/ws: each stream the bot got
    # came from a webhook answer, with the call's own CallSid in its start.
    assert connections == 3
    sids = [data["call_id"] for data in calls]
    assert len(sids) == 3 and len(set(sids)) == 3, calls
    assert all(sid.startswith("CA") and len(sid) == 34 for sid in sids), sids
    # What was done to reach the bot is said once, not once per call.
    notes = report["notes"]
    assert any("wss://None" in note for note in notes), notes
    assert len(notes) == len({n.split(":")[0] for n in notes}), notes
