"""Dialing through the bot's webhook, as the carrier does (issue 26, items 1 and 2).

The answers of each carrier are read from their documented forms; Pipecat's
development runner (``-t twilio``, no ``--proxy``) is dialed through its own
webhook; a bot that validates Twilio's signature with the ``twilio``
package's ``RequestValidator`` on the webhook and the WebSocket upgrade
accepts a call signed with the right token and refuses a wrong one.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from pipecat_wsclient.caller.call import CallOptions, run_call
from pipecat_wsclient.protocols.webhook import (
    WebhookError,
    local_stream,
    parse_answer,
    webhook_request,
)
from support.webhook_bot import free_port, signed_bot

TWIML = b"""<?xml version="1.0" encoding="UTF-8"?>
<Response><Connect><Stream url="wss://bot.example/ws?room=1">
  <Parameter name="customer" value="42"/><Parameter name="lang" value="en"/>
</Stream></Connect></Response>"""


# -- the answers (pure) -------------------------------------------------------------


def test_twiml_names_the_stream_and_its_parameters_and_the_ids_go_with_it() -> None:
    request = webhook_request("twilio", "https://bot.example/voice")
    assert request.method == "POST"
    for name in ("CallSid", "AccountSid", "From", "To", "CallStatus", "Direction", "ApiVersion"):
        assert request.fields[name], name
    assert request.fields["CallSid"].startswith("CA") and len(request.fields["CallSid"]) == 34
    target = parse_answer(request, TWIML, "application/xml")
    assert target.url == "wss://bot.example/ws?room=1"
    assert target.params == {"customer": "42", "lang": "en"}
    assert target.carrier == {
        "call_sid": request.fields["CallSid"],
        "account_sid": request.fields["AccountSid"],
    }


def test_plivo_xml_and_a_vonage_ncco_name_their_streams() -> None:
    plivo = webhook_request("plivo", "https://bot.example/answer")
    xml = (
        b'<Response><Stream bidirectional="true" keepCallAlive="true" '
        b'contentType="audio/x-mulaw;rate=8000" extraHeaders="a=1,b=two">'
        b"wss://bot.example/ws</Stream></Response>"
    )
    target = parse_answer(plivo, xml)
    assert (target.url, target.params) == ("wss://bot.example/ws", {"a": "1", "b": "two"})
    assert target.carrier == {
        "call_id": plivo.fields["CallUUID"],
        "content_type": "audio/x-mulaw;rate=8000",
    }
    assert target.content_type == "audio/x-mulaw;rate=8000"
    vonage = webhook_request("vonage", "https://bot.example/answer")
    assert vonage.method == "GET" and "uuid=" in vonage.target
    ncco = [
        {"action": "talk", "text": "hi"},
        {
            "action": "connect",
            "endpoint": [
                {
                    "type": "websocket",
                    "uri": "wss://bot.example/socket",
                    "content-type": "audio/l16;rate=8000",
                    "headers": {"caller": "x"},
                }
            ],
        },
    ]
    target = parse_answer(vonage, json.dumps(ncco).encode())
    assert target.url == "wss://bot.example/socket" and target.params == {"caller": "x"}
    assert target.carrier == {"sample_rate": "8000"}


@pytest.mark.parametrize(
    ("protocol", "body", "says"),
    [
        ("twilio", b"<Response><Say>hi</Say></Response>", "no <Connect><Stream>"),
        (
            "twilio",
            b'<Response><Start><Stream url="wss://x/ws"/></Start></Response>',
            "one-way stream",
        ),
        ("twilio", b"<html>Not found</html>", "not TwiML"),
        ("twilio", b"oops", "not XML"),
        (
            "twilio",
            b'<!DOCTYPE r [<!ENTITY a "aaaa">]><Response>&a;</Response>',
            "DOCTYPE",
        ),
        (
            "twilio",
            b'<Response><Connect><Stream url="https://x/ws"/></Connect></Response>',
            "ws://",
        ),
        ("plivo", b"<Response><Stream>wss://x/ws</Stream></Response>", "bidirectional"),
        ("vonage", b'[{"action": "talk"}]', "no connect action"),
        ("vonage", b"{", "not JSON"),
    ],
)
def test_an_answer_with_no_usable_stream_says_why(protocol: str, body: bytes, says: str) -> None:
    with pytest.raises(WebhookError, match=says):
        parse_answer(webhook_request(protocol, "http://127.0.0.1:1/"), body)


def test_the_runners_stream_without_a_host_and_wss_on_plain_http_is_made_dialable() -> None:
    request = webhook_request("twilio", "http://127.0.0.1:7860/")
    answer = b'<Response><Connect><Stream url="wss://None/ws"></Stream></Connect></Response>'
    target = local_stream(parse_answer(request, answer), request.url)
    assert target.url == "ws://127.0.0.1:7860/ws"
    assert len(target.notes) == 2 and "no host" in target.notes[0], target.notes
    elsewhere = parse_answer(request, TWIML)
    assert local_stream(elsewhere, request.url).url == "wss://bot.example/ws?room=1"


def test_exotel_has_no_webhook() -> None:
    with pytest.raises(ValueError, match="no webhook"):
        webhook_request("exotel", "http://127.0.0.1:1/")


# -- Pipecat's development runner -----------------------------------------------------


@pytest.mark.slow  # Pipecat's development runner in a subprocess
async def test_the_runner_bot_is_dialed_through_its_webhook(tmp_path) -> None:
    from test_runner_bot import QUESTION, speech_clip

    from pipecat_wsclient.audio.wav import read_wav
    from support.runner_bots import runner_available, runner_bot

    runner_available()
    clip = read_wav(speech_clip(tmp_path / "q.wav", QUESTION), 8000)
    with runner_bot() as bot:
        result = await run_call(
            CallOptions(
                f"http://127.0.0.1:{bot.port}/",
                protocol="twilio",
                audio=clip,
                listen=4.0,
                wait_greeting=True,
            )
        )
        connections = bot.wait_connections(1)
    assert result.exit_code == 0, result.error
    assert connections == 1
    assert result.heard_secs > 2.0  # the greeting and the answer
    assert result.uri.startswith("ws://127.0.0.1:"), result.uri
    assert any("no host" in note for note in result.notes), result.notes


# -- a bot that validates Twilio's signature ------------------------------------------


async def test_a_bot_that_validates_twilios_signature_accepts_the_right_token() -> None:
    pytest.importorskip("twilio")
    async with signed_bot("s3cret") as bot:
        result = await run_call(
            CallOptions(
                bot["url"], protocol="twilio", auth_token="s3cret", audio=bytes(16000), listen=0.5
            )
        )
    assert [ok for ok, _ in bot["webhook"]] == [True] and bot["stream"] == [True]
    assert result.exit_code in (0, 8), result.error  # silence echoed: maybe nothing heard
    (_, form) = bot["webhook"][0]
    assert bot["start"]["callSid"] == form["CallSid"]
    assert bot["start"]["accountSid"] == form["AccountSid"]
    assert bot["start"]["customParameters"] == {"customer": "42"}


async def test_a_wrong_token_is_refused_with_exit_4_naming_the_signature(monkeypatch) -> None:
    pytest.importorskip("twilio")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-it")
    async with signed_bot("s3cret") as bot:
        result = await run_call(
            CallOptions(bot["url"], protocol="twilio", audio=bytes(1600), listen=0.2)
        )
    assert result.exit_code == 4, result.error
    assert "signature" in result.error and "TWILIO_AUTH_TOKEN" in result.error, result.error
    assert "not-it" not in result.error and "\n" not in result.error
    assert [ok for ok, _ in bot["webhook"]] == [False] and bot["stream"] == []


async def test_an_unsigned_call_to_a_validating_bot_says_to_give_the_token(monkeypatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    pytest.importorskip("twilio")
    async with signed_bot("s3cret") as bot:
        result = await run_call(CallOptions(bot["url"], protocol="twilio", audio=bytes(1600)))
    assert result.exit_code == 4, result.error
    assert "--auth-token" in result.error, result.error


async def test_a_webhook_that_is_not_there_is_refused_with_exit_3() -> None:
    result = await run_call(
        CallOptions(f"http://127.0.0.1:{free_port()}/voice", protocol="twilio", audio=b"")
    )
    assert result.exit_code == 3, result.error
    assert "webhook" in result.error


@pytest.mark.slow
async def test_a_scenario_dials_through_the_webhook_signed(tmp_path) -> None:
    pytest.importorskip("twilio")
    from pipecat_wsclient.audio.wav import write_wav
    from pipecat_wsclient.scenario.model import load_scenario
    from pipecat_wsclient.scenario.run import RunOptions, run_scenario
    from support.plain_bot import tone

    write_wav(tmp_path / "q.wav", tone(0.5, 300.0), 8000)
    path = tmp_path / "s.yaml"
    path.write_text("name: webhook\nprotocol: twilio\nturns:\n  - play: q.wav\n")
    async with signed_bot("s3cret") as bot:
        result = await run_scenario(
            load_scenario(path), RunOptions(uri=bot["url"], auth_token="s3cret")
        )
    assert [ok for ok, _ in bot["webhook"]] == [True] and bot["stream"] == [True]
    assert bot["start"]["customParameters"] == {"customer": "42"}
    assert result.exit_code == 0, result.error
    assert result.uri.startswith("ws://127.0.0.1:"), result.uri


async def test_a_refused_upgrade_signature_is_named(monkeypatch) -> None:
    pytest.importorskip("twilio")
    async with signed_bot("s3cret", webhook_checks=False) as bot:
        result = await run_call(
            CallOptions(bot["url"], protocol="twilio", auth_token="wrong", audio=bytes(1600))
        )
    assert bot["stream"] == [False]
    assert result.exit_code == 4, result.error
    assert "upgrade's signature" in result.error and "--auth-token" in result.error, result.error
    assert "wrong" not in result.error


@pytest.mark.slow  # Pipecat's development runner in a subprocess
async def test_call_dials_the_runner_bot_through_its_webhook_from_the_command_line(tmp_path):
    """``call http://.../ --protocol twilio``: notes say what was done; --json has them."""
    import json as json_module

    from support.commands import cli
    from support.runner_bots import runner_available, runner_bot

    runner_available()
    with runner_bot() as bot:
        code, out, err = await cli(
            "call", f"http://127.0.0.1:{bot.port}/", "--protocol", "twilio",
            "--listen", "1", "--json", timeout=90,
        )  # fmt: skip
    assert code == 0, err
    report = json_module.loads(out)
    assert report["uri"].startswith("ws://127.0.0.1:") and report["notes"], report["notes"]
    assert any("no host" in note for note in report["notes"])


@pytest.mark.slow  # three command-line processes
async def test_a_webhook_with_a_protocol_that_has_none_is_refused_before_dialing():
    from support.commands import cli

    for protocol in ("raw", "exotel"):
        code, _, err = await cli("call", "http://127.0.0.1:9/voice", "--protocol", protocol)
        assert code == 2 and "webhook" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = await cli(
        "call", "http://127.0.0.1:9/voice", "--protocol", "telnyx", "--auth-token", "x"
    )
    assert code == 2 and "signatures are not made here" in err, err


# -- a webhook whose method is GET (Pipecat's Plivo example) ---------------------------


@contextlib.asynccontextmanager
async def get_only_plivo_bot(token: str | None = None, get_too: bool = True) -> AsyncIterator[dict]:
    """A Plivo webhook served on ``GET /`` only, answering as pipecat-examples' Plivo server does.

    ``plivo-chatbot/inbound/server.py``: ``@app.get("/")`` (its README: "Ensure
    the Answer Method is set to GET"), the stream's URL as the element's text
    on lines of its own, ``wss://{Host}/ws`` with a base64 ``body`` query,
    ``&amp;``-joined. ``/ws`` echoes the caller's audio as ``playAudio``.
    ``get_too=False``: ``GET /`` refuses too (405).
    """
    port = free_port()
    seen: dict = {"methods": [], "query": None, "signed": None, "ws_query": None, "start": None}

    async def refuse(request: web.Request) -> web.Response:
        seen["methods"].append(request.method)
        return web.Response(status=405, text="Method Not Allowed", headers={"Allow": "GET"})

    async def answer(request: web.Request) -> web.Response:
        if not get_too:
            return await refuse(request)
        seen["methods"].append("GET")
        seen["query"] = dict(request.query)
        if token is not None:
            from plivo.utils.signature_v3 import validate_v3_signature

            seen["signed"] = validate_v3_signature(
                "GET",
                f"http://127.0.0.1:{port}{request.path_qs}",
                request.headers.get("X-Plivo-Signature-V3-Nonce", ""),
                token,
                request.headers.get("X-Plivo-Signature-V3", ""),
            )
        body = base64.b64encode(json.dumps({"from": request.query["From"]}).encode()).decode()
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
            '  <Stream bidirectional="true" keepCallAlive="true" '
            'contentType="audio/x-mulaw;rate=8000">\n'
            f"    wss://{request.host}/ws?body={body}&amp;lang=en\n  </Stream>\n</Response>"
        )
        return web.Response(text=xml, content_type="application/xml")

    async def stream(request: web.Request) -> web.StreamResponse:
        seen["ws_query"] = dict(request.query)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            if message["event"] == "start":
                seen["start"] = message["start"]
            elif message["event"] == "media":
                media = {
                    "contentType": "audio/x-mulaw",
                    "sampleRate": 8000,
                    "payload": message["media"]["payload"],
                }
                await ws.send_str(json.dumps({"event": "playAudio", "media": media}))
        return ws

    app = web.Application()
    app.router.add_post("/", refuse)
    app.router.add_get("/", answer)
    app.router.add_get("/ws", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    seen["url"] = f"http://127.0.0.1:{port}/"
    try:
        yield seen
    finally:
        await runner.cleanup()


async def test_a_webhook_that_refuses_post_is_asked_with_get_as_plivos_example_needs():
    async with get_only_plivo_bot() as bot:
        result = await run_call(
            CallOptions(bot["url"], protocol="plivo", audio=bytes(16000), listen=0.5)
        )
    assert result.exit_code in (0, 8), result.error  # silence echoed: maybe nothing heard
    assert bot["methods"] == ["POST", "GET"], bot["methods"]
    assert "refused POST (HTTP 405): asked it with GET" in result.notes[0], result.notes
    # The carrier's fields in the query; the stream's query (the example's &amp;) kept.
    assert bot["query"]["CallUUID"] == bot["start"]["callId"], (bot["query"], bot["start"])
    assert bot["query"]["From"] and bot["query"]["Direction"] == "inbound"
    assert set(bot["ws_query"]) == {"body", "lang"} and bot["ws_query"]["lang"] == "en"
    assert result.uri.startswith("ws://127.0.0.1:"), result.uri


async def test_the_get_is_signed_over_its_query_as_plivo_signs_it():
    pytest.importorskip("plivo")
    async with get_only_plivo_bot(token="s3cret") as bot:
        result = await run_call(
            CallOptions(
                bot["url"], protocol="plivo", auth_token="s3cret", audio=bytes(1600), listen=0.2
            )
        )
    assert result.exit_code in (0, 8), result.error
    assert bot["methods"] == ["POST", "GET"] and bot["signed"] is True, bot


async def test_a_webhook_that_refuses_get_too_fails_with_exit_4_saying_both():
    async with get_only_plivo_bot(get_too=False) as bot:
        result = await run_call(CallOptions(bot["url"], protocol="plivo", audio=b""))
    assert bot["methods"] == ["POST", "GET"]
    assert result.exit_code == 4, result.error
    assert "HTTP 405" in result.error and "with GET; POST was refused" in result.error
