"""Locust users dialing through the bot's webhook, as the carrier does (issue 26, items 1-3).

``--host http://...`` with a carrier's ``protocol``: each call asks the
webhook for the stream, with ids of its own, signed with the user's
``auth_token`` (or ``$TWILIO_AUTH_TOKEN``). Against Pipecat's development
runner (``support/runner_bots.py``) and a bot that validates Twilio's
signature (``support/webhook_bot.py``). Locust runs in a subprocess, as in
``test_locust.py`` (importing it would monkey-patch this process).
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
from test_locust import locust, rows, tail, wait

from pipecat_wsclient.audio.wav import write_wav
from support.plain_bot import tone

pytestmark = pytest.mark.slow  # Locust and bots in subprocesses

if importlib.util.find_spec("locust") is None:
    pytest.skip("Locust is not installed (pip install -e '.[locust]')", allow_module_level=True)

TOKEN = "s3cret-token"

LOCUSTFILE = """
from pipecat_wsclient.locust import VoiceCallUser


class Caller(VoiceCallUser):
    protocol = {protocol!r}
    clips = [{clip!r}]
    think = {think}
    auth_token = {token!r}
"""


def locustfile(folder: Path, protocol="twilio", think=0.3, token: str | None = None) -> Path:
    clip = folder / "q.wav"
    write_wav(clip, tone(0.5, 300.0), 8000)
    path = folder / "webhook_locustfile.py"
    path.write_text(LOCUSTFILE.format(protocol=protocol, clip=str(clip), think=think, token=token))
    return path


def run_locust(folder: Path, host: str, secs: int, env: dict[str, str] | None = None, **kw):
    """A headless run of two users; (exit code, the stats rows, the log)."""
    log = folder / "locust.log"
    proc = locust(
        "-f", str(locustfile(folder, **kw)), "--headless", "-u", "2", "-r", "2",
        "-t", f"{secs}s", "--stop-timeout", "10", "--csv", str(folder / "run"), "--host", host,
        log=log, env={"TWILIO_AUTH_TOKEN": "", **(env or {})},
    )  # fmt: skip
    rc = wait(proc, log, 90)
    stats = folder / "run_stats.csv"
    return rc, rows(stats) if stats.exists() else {}, tail(log, 20000)


@pytest.mark.timeout(180)
def test_users_dial_the_runner_bot_through_its_webhook_with_fresh_ids(tmp_path) -> None:
    from support.runner_bots import runner_available, runner_bot

    runner_available()
    with runner_bot() as bot:
        rc, stats, log = run_locust(tmp_path, f"http://127.0.0.1:{bot.port}/", 6, think=2.0)
        calls = bot.call_data()
    # Every call connected and completed. (Whether the bot's turn taking
    # answers a tone in time is not this test's: a `response` may fail.)
    with (tmp_path / "run_failures.csv").open(newline="") as f:
        failed = {row["Name"]: row["Error"] for row in csv.DictReader(f)}
    assert set(failed) <= {"response"} and rc in (0, 1), (failed, log)
    connects = int(stats["connect"]["Request Count"])
    assert connects >= 2 and stats["connect"]["Failure Count"] == "0", stats["connect"]
    assert stats["call"]["Failure Count"] == "0", stats["call"]
    # Each stream the bot got came from a webhook answer (the runner's names
    # wss://None/ws), with the call's own CallSid in its start.
    sids = [data["call_id"] for data in calls]
    assert len(sids) >= connects and len(set(sids)) == len(sids), calls
    assert all(sid.startswith("CA") for sid in sids), sids


@pytest.mark.timeout(180)
@pytest.mark.parametrize("given", ["attribute", "environment"])
def test_users_sign_the_webhook_and_the_upgrade_with_the_token(tmp_path, given) -> None:
    pytest.importorskip("twilio")
    from support.webhook_bot import signed_bot_in_thread

    with signed_bot_in_thread(TOKEN) as bot:
        if given == "attribute":
            rc, stats, log = run_locust(tmp_path, bot["url"], 4, token=TOKEN)
        else:
            rc, stats, log = run_locust(tmp_path, bot["url"], 4, env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert rc == 0, log
    connects = int(stats["connect"]["Request Count"])
    assert connects >= 2 and stats["connect"]["Failure Count"] == "0", stats["connect"]
    assert bot["webhook"] and all(ok for ok, _ in bot["webhook"]), bot["webhook"]
    assert bot["stream"] and all(bot["stream"]), bot["stream"]
    sids = [form["CallSid"] for _, form in bot["webhook"]]
    assert len(set(sids)) == len(sids) >= connects
    assert {start["callSid"] for start in bot["starts"]} <= set(sids)
    assert TOKEN not in log


@pytest.mark.timeout(120)
def test_a_webhook_the_protocol_cannot_dial_is_named_before_any_call(tmp_path) -> None:
    rc, stats, log = run_locust(tmp_path, "http://127.0.0.1:9/voice", 2, protocol="exotel")
    assert rc == 1, log  # Locust: a user that failed to start
    assert "Caller: http://127.0.0.1:9/voice: not a WebSocket URI" in log, log
    assert "--protocol exotel has no webhook" in log
    assert "connect" not in stats, stats  # no call was made
