"""The browser phone dialing through the bot's webhook, and the carrier's rules on its page.

The bot validates Twilio's signature on its webhook and its stream's upgrade
(``support/webhook_bot.py``) and, asked to, breaks Twilio's rule 31951 (an
extra field in its media). What the page receives is read by a page written
in Python (``test_phone_server.Page``); the real Chromium shows the rule
broken in the call's summary (``test_phone_browser.py``).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from test_phone_server import Page, call_url
from websockets.asyncio.client import connect

from pipecat_wsclient.cli.main import main
from pipecat_wsclient.phone import PhoneOptions, PhoneServer
from support.plain_bot import tone
from support.webhook_bot import signed_bot

TOKEN = "s3cret-token"


async def one_call(server: PhoneServer, secs: float = 0.6) -> Page:
    """Dial from a page, say ``secs`` of a tone, hang up; the page once the call ended."""
    async with connect(call_url(server), origin=server.base_url.rstrip("/")) as ws:
        page = Page(ws)
        deadline = time.monotonic() + 10
        while not any(m["state"] in ("connected", "failed") for m in page.of("state")):
            assert time.monotonic() < deadline, page.messages[-5:]
            await asyncio.sleep(0.02)
        if page.of("state")[-1]["state"] == "connected":
            await page.speak(tone(secs, 300.0) + bytes(8000))
            await ws.send(json.dumps({"type": "hangup"}))
        await page.wait_for("ended", timeout=15)
        await asyncio.wait_for(page.closed.wait(), 10)
    return page


async def test_each_call_asks_the_webhook_signed_and_the_summary_has_the_rules_broken() -> None:
    pytest.importorskip("twilio")
    async with signed_bot(TOKEN, extra_field=True) as bot:
        options = PhoneOptions(bot["url"], protocol="twilio", auth_token=TOKEN)
        async with PhoneServer(options) as server:
            pages = [await one_call(server), await one_call(server)]
    # Each call: a signed webhook request with its own ids, a signed upgrade.
    assert [ok for ok, _ in bot["webhook"]] == [True, True] and bot["stream"] == [True, True]
    sids = [form["CallSid"] for _, form in bot["webhook"]]
    assert sids[0] != sids[1]
    assert [start["callSid"] for start in bot["starts"]] == sids
    assert bot["starts"][0]["customParameters"] == {"customer": "42"}
    for page in pages:
        # The page is told what was done: asked the webhook, then dialed its stream.
        states = [(m["state"], m["detail"]) for m in page.of("state")]
        assert states[0] == ("connecting", f"asking the webhook {bot['url']}"), states
        assert states[1][1].startswith("dialing ws://127.0.0.1:"), states
        notes = [m["detail"] for m in page.of("event") if m["kind"] == "info"]
        assert any(note.startswith(f"webhook {bot['url']} answered") for note in notes), notes
        summary = page.of("ended")[-1]["summary"]
        assert summary["exit_code"] == 0, summary["error"]
        assert summary["uri"].startswith("ws://127.0.0.1:") and summary["notes"], summary
        # The bot's echo carries media.track: Twilio's 31951, in the summary.
        broken = summary["carrier_errors"]["extra field"]
        assert broken["code"] == "31951" and broken["count"] >= 10, broken
        assert "media.track" in broken["example"], broken
        assert TOKEN not in json.dumps(page.messages)


async def test_a_refused_signature_fails_the_call_on_the_page_before_any_stream() -> None:
    pytest.importorskip("twilio")
    async with signed_bot(TOKEN) as bot:
        options = PhoneOptions(bot["url"], protocol="twilio", auth_token="not-it")
        async with PhoneServer(options) as server:
            page = await one_call(server)
    assert [ok for ok, _ in bot["webhook"]] == [False] and bot["stream"] == []
    failed = [m["detail"] for m in page.of("state") if m["state"] == "failed"]
    assert failed and "HTTP 403" in failed[0] and "signature" in failed[0], failed
    summary = page.of("ended")[-1]["summary"]
    assert summary["exit_code"] == 4 and summary["uri"] == bot["url"], summary
    assert "not-it" not in json.dumps(page.messages)


def test_a_webhook_the_protocol_cannot_dial_is_refused_before_serving(capsys) -> None:
    with pytest.raises(ValueError, match="--protocol exotel has no webhook"):
        PhoneServer(PhoneOptions("http://127.0.0.1:9/voice", protocol="exotel"))
    for args, says in [
        (["--protocol", "exotel"], "--protocol exotel has no webhook"),
        (["--protocol", "telnyx", "--auth-token", TOKEN], "signatures are not made here"),
    ]:
        code = main(["phone", "http://127.0.0.1:9/voice", "--no-browser", *args])
        err = capsys.readouterr().err
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
        assert TOKEN not in err
