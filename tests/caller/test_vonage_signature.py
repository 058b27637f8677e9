"""Vonage's signed webhooks: a bot that checks them with Vonage's own code accepts our calls.

The bot's answer_url is served on ``GET /answer`` (Vonage GETs it), checks
``Authorization: Bearer`` with the ``vonage-jwt`` package's
``verify_signature`` and the account's signature secret, as Vonage tells bots
to, and answers an NCCO ``connect`` to its ``/socket`` (L16 at 16 kHz),
which echoes the caller's audio.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from pipecat_wsclient.caller.call import CallOptions, run_call
from support.webhook_bot import free_port

SECRET = "vonage-signature-secret"


@contextlib.asynccontextmanager
async def vonage_bot(secret: str) -> AsyncIterator[dict]:
    from vonage_jwt.verify_jwt import verify_signature

    port = free_port()
    seen: dict = {"signed": [], "query": None, "connected": None, "audio": 0}

    async def answer(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        ok = header.startswith("Bearer ") and verify_signature(token, secret)
        seen["signed"].append(ok)
        if not ok:
            return web.Response(status=401, text="bad signature")
        seen["query"] = dict(request.query)
        ncco = [
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": f"ws://127.0.0.1:{port}/socket",
                        "content-type": "audio/l16;rate=16000",
                        "headers": {"uuid": request.query.get("uuid", "")},
                    }
                ],
            }
        ]
        return web.json_response(ncco)

    async def stream(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                seen["connected"] = seen["connected"] or json.loads(msg.data)
            elif msg.type == WSMsgType.BINARY:
                seen["audio"] += len(msg.data)
                await ws.send_bytes(msg.data)
            else:
                break
        return ws

    app = web.Application()
    app.router.add_get("/answer", answer)
    app.router.add_get("/socket", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    seen["url"] = f"http://127.0.0.1:{port}/answer"
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _no_secret_in_env(monkeypatch):
    monkeypatch.delenv("VONAGE_SIGNATURE_SECRET", raising=False)


async def test_a_bot_that_validates_vonages_signature_accepts_the_right_secret():
    async with vonage_bot(SECRET) as bot:
        result = await run_call(
            CallOptions(bot["url"], protocol="vonage", auth_token=SECRET, listen=0.5)
        )
    assert result.exit_code in (0, 8), result.error
    assert bot["signed"] == [True]
    # The call's uuid went to the answer_url and, as the NCCO's header, into the stream.
    assert bot["query"]["uuid"] and bot["connected"]["uuid"] == bot["query"]["uuid"]
    assert bot["connected"]["content-type"] == "audio/l16;rate=16000"
    assert bot["audio"] > 16000  # the caller's audio reached it


async def test_the_secret_from_the_environment_signs_too(monkeypatch):
    monkeypatch.setenv("VONAGE_SIGNATURE_SECRET", SECRET)
    async with vonage_bot(SECRET) as bot:
        result = await run_call(CallOptions(bot["url"], protocol="vonage", listen=0.2))
    assert result.exit_code in (0, 8), result.error
    assert bot["signed"] == [True]


async def test_a_wrong_secret_is_refused_with_exit_4_naming_the_signature():
    async with vonage_bot(SECRET) as bot:
        result = await run_call(
            CallOptions(bot["url"], protocol="vonage", auth_token="wrong", listen=0.2)
        )
    assert result.exit_code == 4
    assert "signature" in (result.error or ""), result.error
    assert "wrong" not in (result.error or "")  # the secret is never shown
    assert bot["signed"] == [False]
