"""websockets' debug log of our connections shows no secret: headers, query, frame data.

Defect 9 of the reliability issue: header masking only knew a fixed list of
names (``X-Session-Credential`` leaked), and the debug log of text frames
carried tokens (a hello with credentials, a carrier's ``customParameters``).
Issue 23, item 7: a token in the URI's path was shown as it was.
A real connection with the debug log on: every secret given in the URI, in
headers and in the hello must be absent from every line, while harmless
facts (the path, the Host header, frame types and sizes) stay.
"""

from __future__ import annotations

from pipecat.frames.frames import OutputTransportMessageUrgentFrame

from harness import client_params, run_pipeline, wait_for, websockets_debug_log
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.protocols import RawPCMSerializer
from pipecat_wsclient.websockets_log import redact_line
from support.servers import echo_server

SECRETS = ["QSECRET1", "HSECRET2", "HSECRET3", "TSECRET4", "MSECRET5", "PSECRET6"]


async def test_debug_log_of_a_real_call_shows_no_secret():
    with websockets_debug_log() as lines:
        async with echo_server() as server:
            t = WebsocketClientTransport(
                f"{server.uri}/sk_live_PSECRET6?session=QSECRET1",
                client_params(
                    serializer=RawPCMSerializer(),
                    additional_headers={"X-Session-Credential": "HSECRET2"},
                    headers_provider=lambda: {"X-Tenant-Signature": "HSECRET3"},
                    session_start_messages=lambda: ['{"event": "start", "auth": "TSECRET4"}'],
                ),
            )
            async with run_pipeline(t) as p:
                await wait_for(lambda: len(server.messages) >= 1, 5)
                await p.send(OutputTransportMessageUrgentFrame(message={"pin": "MSECRET5"}))
                await wait_for(lambda: len(server.messages) >= 2, 5)
                await p.end()
    assert server.request_headers[0]["x-session-credential"] == "HSECRET2"  # it was sent
    text = "\n".join(lines)
    for secret in SECRETS:
        assert secret not in text, secret
    assert t.session.uri.endswith("/ws/***?session=***")  # what --json and JUnit show
    assert any(line.startswith("> GET /ws/***?session=*** HTTP/1.1") for line in lines)
    assert "> X-Session-Credential: ***" in lines
    assert any(line.startswith("> Host: 127.0.0.1:") for line in lines)
    assert any(line.startswith("> TEXT *** [") for line in lines)
    assert any(line.startswith("< TEXT *** [") for line in lines)  # the echo


def test_uris_in_any_line_lose_their_credentials():
    assert redact_line("> GET /media/eyJhbGciOiJIUzI1NiJ9.e30.x HTTP/1.1") == (
        "> GET /media/*** HTTP/1.1"
    )
    assert redact_line("> GET /twilio/ws HTTP/1.1") == "> GET /twilio/ws HTTP/1.1"
    assert redact_line("redirect to wss://h/token/abc123?k=v failed") == (
        "redirect to wss://h/token/***?k=*** failed"
    )
    assert redact_line("< Location: wss://h/ws/sk_live_abcd") == "< Location: ***"


def test_only_harmless_headers_keep_their_values():
    assert redact_line("> Cookie: a=b") == "> Cookie: ***"
    assert redact_line("< Set-Cookie: s=1") == "< Set-Cookie: ***"
    assert redact_line("> X-Anything: v") == "> X-Anything: ***"
    assert redact_line("> Sec-WebSocket-Version: 13") == "> Sec-WebSocket-Version: 13"
    assert redact_line("> User-Agent: pipecat-wsclient/0.1.0") == (
        "> User-Agent: pipecat-wsclient/0.1.0"
    )
    assert redact_line("> BINARY 00 01 [2 bytes]") == "> BINARY *** [2 bytes]"
    assert redact_line("> CLOSE 1000 (OK) [2 bytes]") == "> CLOSE 1000 (OK) [2 bytes]"
