"""Pipecat's development runner, dialed as each carrier it supports dials it.

The bot (tests/support/runner_bot.py) is Pipecat's official telephony example
(pipecat-examples ``twilio-chatbot/inbound/bot.py``, whose ``bot()`` is the
Telnyx, Plivo and Exotel examples' but for its ``transport_params`` key) run
by ``pipecat.runner.run.main()`` with ``-t twilio``, ``-t telnyx``, ``-t
plivo`` or ``-t exotel``, its cloud services replaced by offline stand-ins.
What the runner serves (Pipecat 1.14, ``pipecat/runner/run.py``,
``_setup_telephony_routes``): ``/ws`` for every telephony transport, and for
Twilio, Telnyx and Plivo a webhook at ``POST /`` answering TwiML, TeXML (with
``bidirectionalMode="rtp"``) or Plivo XML (``bidirectional="true"``, mu-law
8 kHz) naming ``wss://None/ws`` when no ``--proxy`` is given. For ``-t
exotel`` ``POST /`` answers JSON (Exotel has no webhook: its stream URL is set
in its dashboard), so Exotel is dialed on ``/ws``. The runner's ``-t vonage``
is Vonage's Video API (a session it joins), not the Voice API's WebSocket:
nothing to dial.

Invariants: through the webhook, each call completes (exit 0) on the stream
the answer named, made dialable (the notes say ``wss://None`` went to the
webhook's host and ``wss://`` became ``ws://``), hears the greeting and the
answer, breaks none of the carrier's rules, and the ids of the webhook
request (Twilio's ``CallSid``, Telnyx's ``CallSid``/call control id and
numbers, Plivo's ``CallUUID``) are the ids Pipecat's ``parse_telephony_websocket``
read from the stream's ``start``. Exotel on ``/ws``: the ids and custom
parameters given reach the bot, and Pipecat's own Exotel serializer breaks
Exotel's chunk rule, reported (``carrier_errors``) without failing the call,
and failing it with ``--strict`` (exit 9). The unmodified examples'
``create_transport`` raises without the carrier's credentials (Twilio,
Telnyx, Plivo): a call through the webhook then fails (exit 7, the close
code), never reported completed.
"""

from __future__ import annotations

import json
import re

import pytest
from test_runner_bot import CLOSE_CODE, QUESTION, assert_the_example_raised, speech_clip

from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller import webhook as caller_webhook
from pipecat_wsclient.caller.call import CallOptions, run_call
from pipecat_wsclient.protocols.webhook import CALLED, CALLER, WebhookRequest
from support.commands import cli
from support.runner_bots import runner_available, runner_bot

# Pipecat's development runner in a subprocess, real-time calls
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

WEBHOOK_TRANSPORTS = ("twilio", "telnyx", "plivo")
"""The runner's transports with a webhook (``POST /``)."""


@pytest.fixture(autouse=True)
def _runner(monkeypatch):
    runner_available()
    for variable in ("TWILIO_AUTH_TOKEN", "PLIVO_AUTH_TOKEN"):  # no signing: the runner has none
        monkeypatch.delenv(variable, raising=False)


def spy_webhook_requests(monkeypatch) -> list[WebhookRequest]:
    """The carrier's webhook requests the caller makes, as they are made."""
    made: list[WebhookRequest] = []
    real = caller_webhook.webhook_request

    def spy(protocol: str, url: str) -> WebhookRequest:
        made.append(real(protocol, url))
        return made[-1]

    monkeypatch.setattr(caller_webhook, "webhook_request", spy)
    return made


def ids_the_bot_should_read(request: WebhookRequest) -> dict[str, str]:
    """The webhook request's ids, under the keys of Pipecat's ``CallData``."""
    fields = request.fields
    if request.protocol == "twilio":
        return {"call_id": fields["CallSid"]}
    if request.protocol == "telnyx":  # the TeXML CallSid is the call control id
        return {"call_id": fields["CallSid"], "from": CALLER, "to": CALLED}
    return {"call_id": fields["CallUUID"]}  # plivo


def assert_dialed_through_the_webhook(notes: list[str], port: int) -> None:
    """The notes of a call through the runner's webhook without ``--proxy``."""
    assert len(notes) == 3, notes
    assert notes[0] == f"webhook http://127.0.0.1:{port}/ answered: stream wss://None/ws", notes
    assert "no host (wss://None/ws)" in notes[1] and f"127.0.0.1:{port}" in notes[1], notes
    assert f"dialing ws://127.0.0.1:{port}/ws" in notes[2], notes


@pytest.mark.parametrize("transport", WEBHOOK_TRANSPORTS)
async def test_the_runner_is_dialed_through_its_webhook(transport, tmp_path, monkeypatch):
    requests = spy_webhook_requests(monkeypatch)
    clip = read_wav(speech_clip(tmp_path / "q.wav", QUESTION), 8000)
    with runner_bot(transport=transport) as bot:
        result = await run_call(
            CallOptions(
                f"http://127.0.0.1:{bot.port}/",
                protocol=transport,
                audio=clip,
                listen=4.0,
                wait_greeting=True,
            )
        )
        connections = bot.wait_connections(1)
        call_data = bot.call_data()
    assert result.exit_code == 0, result.error
    # Through the webhook: its answer read, the stream it named made dialable.
    assert_dialed_through_the_webhook(result.notes, bot.port)
    assert result.uri == f"ws://127.0.0.1:{bot.port}/ws", result.uri
    # Audio came back: the greeting, then the answer to our question.
    assert result.greeting is not None, result  # "Hello, I am your teacher."
    (turn,) = result.turns
    assert turn["latency_ms"] is not None and turn["latency_ms"] > 0, turn
    assert result.heard_secs > 2.0 and result.bytes_in > 10_000, result
    assert result.end["by"] == "caller" and result.end["code"] == 1000, result.end
    assert result.carrier_errors == {}, result.carrier_errors
    # The carrier's ids: those of the webhook request are those the bot read.
    assert connections == 1
    (request,) = requests
    (ids,) = call_data
    assert ids["transport"] == transport, ids
    assert ids["stream_id"], ids
    assert {k: ids[k] for k in ids_the_bot_should_read(request)} == ids_the_bot_should_read(
        request
    ), (ids, request.fields)
    if transport == "telnyx":
        assert ids["outbound_encoding"] == "PCMU", ids  # the TeXML names no codec: PCMU
    print(
        f"{transport} via webhook:",
        json.dumps(
            {
                "heard_secs": round(result.heard_secs, 2),
                "bytes_in": result.bytes_in,
                "latency_ms": round(turn["latency_ms"]),
                "ids": ids,
            }
        ),
    )


async def test_exotel_is_dialed_on_the_runners_ws_and_its_chunk_rule_is_reported(tmp_path):
    """Exotel's example runs as is (its ``create_transport`` needs no credentials)."""
    clip = speech_clip(tmp_path / "q.wav", QUESTION)
    call_sid, stream_sid = "a" * 32, "b" * 32
    with runner_bot(transport="exotel", example_transport=True) as bot:
        code, out, err = await cli(
            "call", bot.uri, "--protocol", "exotel", "--play", clip,
            "--wait-greeting", "--listen", "4", "--json",
            "--carrier", f"call_sid={call_sid}", "--carrier", f"stream_sid={stream_sid}",
            "--carrier", "from_number=+919800000001", "--param", "customer=42",
        )  # fmt: skip
        strict_code, strict_out, strict_err = await cli(
            "call", bot.uri, "--protocol", "exotel", "--listen", "1", "--strict",
        )  # fmt: skip
        connections = bot.wait_connections(2)
        call_data = bot.call_data()
        # Exotel's POST / is no webhook (JSON), and ours refuses one for Exotel before dialing.
        refused, _, refused_err = await cli(
            "call", f"http://127.0.0.1:{bot.port}/", "--protocol", "exotel"
        )
    assert code == 0, err
    report = json.loads(out)
    assert report["notes"] == [], report["notes"]  # dialed as given
    assert report["greeting"] is not None and len(report["turns"]) == 1, report
    assert report["turns"][0]["latency_ms"] is not None, report["turns"]
    assert report["heard_secs"] > 2.0 and report["bytes_in"] > 10_000, report
    assert report["end"] == {"by": "caller", "code": 1000, "reason": ""}, report["end"]
    # Pipecat's ExotelFrameSerializer sends each 20 ms of audio in its own media message
    # (320 bytes); Exotel takes at least 3.2 kB, in multiples of 320.
    broken = report["carrier_errors"]
    assert set(broken) == {"media under 3200 bytes"}, broken
    assert broken["media under 3200 bytes"]["count"] > 50, broken
    # The ids and custom parameters given are those the bot read.
    assert connections == 2
    first = call_data[0]
    assert first["transport"] == "exotel", first
    assert (first["call_id"], first["stream_id"], first["from"]) == (
        call_sid,
        stream_sid,
        "+919800000001",
    ), first
    assert first["custom_parameters"] == {"customer": "42"}, first
    # --strict fails the same call: exit 9, the rule named.
    assert strict_code == 9, (strict_code, strict_out, strict_err)
    assert "carrier rules broken" in strict_out and "media under 3200 bytes" in strict_out
    assert "broke the carrier's rules" in strict_err, strict_err
    assert refused == 2 and "exotel has no webhook" in refused_err, refused_err
    print("exotel:", json.dumps({"carrier_errors": broken, "ids": first}))


@pytest.mark.parametrize("transport", WEBHOOK_TRANSPORTS)
async def test_the_unmodified_example_raising_is_not_reported_completed(transport):
    """The example's own ``create_transport`` without the carrier's credentials, via the webhook."""
    with runner_bot(transport=transport, crash=True) as bot:
        code, out, err = await cli(
            "call", f"http://127.0.0.1:{bot.port}/", "--protocol", transport, "--listen", "1",
        )  # fmt: skip
        connections = bot.wait_connections(1)
        log = bot.log()
        call_data = bot.call_data()
    assert code == 7, (code, out, err)
    assert re.search(r"result\s*│\s*completed", out) is None, out
    assert "note: webhook" in err and "no host (wss://None/ws)" in err, err
    assert re.search(rf"\b{CLOSE_CODE}\b", err), err
    assert connections == 1 and call_data == []  # bot() was called, and raised
    assert_the_example_raised(log)
    missing = re.search(r"missing required parameters: ([^\n]*)", log)
    print(f"{transport} crash:", missing.group(1) if missing else None)


async def test_a_scenario_through_the_webhook_says_what_was_done(tmp_path):
    """``test`` reaches the runner through its webhook and reports the fixes it made."""
    from pipecat_wsclient.scenario.model import parse_scenario
    from pipecat_wsclient.scenario.run import RunOptions, run_scenario

    scenario = parse_scenario(
        {"name": "greeting", "protocol": "twilio", "turns": [{"listen": 5}, {"wait": 1}]}
    )
    with runner_bot() as bot:
        result = await run_scenario(
            scenario, RunOptions(uri=f"http://127.0.0.1:{bot.port}/", transcripts=False)
        )
    assert result.exit_code == 0, result.as_dict()
    assert result.uri.startswith("ws://127.0.0.1:") and result.uri.endswith("/ws")
    assert any("wss://None" in note for note in result.notes), result.notes
    assert result.as_dict()["notes"] == result.notes
    assert result.turns[0].answer_start_s is not None  # the runner bot greets
