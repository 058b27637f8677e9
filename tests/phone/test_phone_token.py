"""The phone's per-run token, its headers and its malformed requests (issue 25), over real HTTP.

Another local user (or a page of another site) has the phone's address but
not its token: every request but the page's public scripts is refused (403,
no detail), the page's socket included. Every response carries the headers
that keep the page from being framed, its files from being embedded, and the
token from leaving in a Referer. Duplicate ``Host`` or ``Origin`` headers get
a one-line 400, not a 500 with a traceback in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest
from loguru import logger
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from pipecat_wsclient.phone import PhoneOptions, PhoneServer

RATE = 8000
PROTECTED = ("/", "/config.json", "/files/1/recording.wav", "/files/1/timeline.png")
PUBLIC = ("/phone.js", "/phone.css", "/worklets.js")


def raw_request(port: int, lines: list[str]) -> tuple[int, dict[str, list[str]], bytes]:
    """Send a hand-written HTTP request; the status, headers (lower-case) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            headers: dict[str, list[str]] = {}
            for line in head.decode().split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            length = int(headers.get("content-length", ["-1"])[0])
            if length >= 0 and len(body) >= length:
                break
    status = int(head.split()[1])
    return status, headers, body


def get(port: int, target: str, *extra: str) -> tuple[int, dict[str, list[str]], bytes]:
    return raw_request(
        port, [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", *extra]
    )


def assert_secure(headers: dict[str, list[str]], what: str) -> None:
    csp = headers.get("content-security-policy", [""])
    assert len(csp) == 1 and "frame-ancestors 'none'" in csp[0], what
    assert "default-src 'self'" in csp[0], what
    assert headers.get("cross-origin-resource-policy") == ["same-origin"], what
    assert headers.get("x-content-type-options") == ["nosniff"], what
    assert headers.get("referrer-policy") == ["no-referrer"], what


async def echo(ws) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            await ws.send(message)


async def test_without_the_token_nothing_but_the_public_scripts_is_served(caplog) -> None:
    """Another local user's view: the address without the token (or a wrong one)."""
    caplog.set_level(logging.DEBUG)
    ours: list[str] = []  # everything logged through loguru (the phone's own lines)
    sink = logger.add(ours.append, level="DEBUG", format="{message}")
    async with serve(echo, "127.0.0.1", 0) as bot:
        uri = f"ws://127.0.0.1:{bot.sockets[0].getsockname()[1]}/ws?key=s3cret"
        options = PhoneOptions(uri, protocol="raw", sample_rate=RATE)
        async with PhoneServer(options) as server:
            port, token = server.port, server.token
            # The owner makes a call, so that there are files to steal.
            async with connect(server.address("/call").replace("http://", "ws://")) as ws:
                for _ in range(25):
                    await ws.send(b"\x00\x10" * 160)
                    await asyncio.sleep(0.02)
                await ws.send(json.dumps({"type": "hangup"}))
                async for message in ws:
                    if isinstance(message, str) and json.loads(message)["type"] == "ended":
                        break
            calls = len(server.results)
            wrong = "x" + token[1:]
            for path in PROTECTED:
                for query in ("", "?token=", f"?token={wrong}", f"?token={token}&token={token}"):
                    status, headers, body = await asyncio.to_thread(get, port, path + query)
                    assert (status, body) == (403, b"Forbidden\n"), (path, query)
                    assert_secure(headers, f"403 for {path}{query}")
                status, headers, _ = await asyncio.to_thread(get, port, f"{path}?token={token}")
                assert status == 200, path
                assert_secure(headers, f"200 for {path}")
            for path in PUBLIC:
                status, headers, _ = await asyncio.to_thread(get, port, path)
                assert status == 200, path
                assert_secure(headers, path)
            status, headers, _ = await asyncio.to_thread(get, port, f"/nope?token={token}")
            assert status == 404
            assert_secure(headers, "404")
            # ?call=1 does nothing without the token: no page to dial from.
            status, _, _ = await asyncio.to_thread(get, port, "/?call=1")
            assert status == 403
            # The page's socket: no call without the token.
            base = f"ws://127.0.0.1:{port}/call"
            for url in (base, f"{base}?token={wrong}", f"{base}?call=1"):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(url):
                        pass
                assert refused.value.response.status_code == 403
                assert refused.value.response.body == b"Forbidden\n"
            # With it, the WebSocket's own answer (101) carries the headers too.
            async with connect(f"{base}?token={token}") as ws:
                assert ws.response.headers["Referrer-Policy"] == "no-referrer"
                assert "frame-ancestors 'none'" in ws.response.headers["Content-Security-Policy"]
                await ws.send(json.dumps({"type": "hangup"}))
            assert len(server.results) <= calls + 1
    logger.remove(sink)
    # The token and the bot's secret are in no log line of the phone's (the
    # test's own page and bot, websockets' client and server, log what they like).
    logged = "\n".join(
        [r.getMessage() for r in caplog.records if r.name.startswith("pipecat_wsclient")] + ours
    )
    assert "token=***" in logged  # websockets' debug lines were there, redacted
    assert token not in logged and "s3cret" not in logged


@pytest.mark.parametrize("header", ["Host", "Origin"])
async def test_a_duplicate_host_or_origin_header_is_a_400_in_one_line(caplog, header) -> None:
    caplog.set_level(logging.DEBUG)
    async with PhoneServer(PhoneOptions("ws://127.0.0.1:9/ws")) as server:
        port = server.port
        here = f"127.0.0.1:{port}"
        value = here if header == "Host" else f"http://{here}"
        for target in ("/", f"/call?token={server.token}", f"/config.json?token={server.token}"):
            lines = [f"GET {target} HTTP/1.1", f"Host: {here}"]
            lines += [f"{header}: {value}", f"{header}: {value}"]
            if target.startswith("/call"):
                lines += [
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version: 13",
                ]
            if header == "Origin":
                lines.remove(f"Host: {here}")
                lines.insert(1, f"Host: {here}")
            status, headers, body = await asyncio.to_thread(raw_request, port, lines)
            assert status == 400, target
            assert body == f"Bad request: more than one {header} header\n".encode()
            assert_secure(headers, f"400 for {target}")
        # The server still serves.
        status, _, _ = await asyncio.to_thread(get, port, f"/?token={server.token}")
        assert status == 200
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
