"""A Twilio bot that validates Twilio's signature, on its webhook and its stream's upgrade.

``signed_bot(token)`` serves ``POST /voice`` (TwiML naming ``ws://.../ws``
with a ``customer`` parameter) and the stream at ``/ws``, which echoes the
caller's media as the bot's voice. Both check ``X-Twilio-Signature`` with
the ``twilio`` package's ``RequestValidator`` and answer 403 when it does
not hold. What it saw is in the dict it yields: ``url`` (the webhook's),
``webhook`` (``(valid, form)`` per request), ``stream`` (valid per upgrade),
``starts`` (each stream's ``start`` object) and ``start`` (the last one).

Shared by the front ends' webhook tests (``call``, ``load``, Locust, the
phone). :func:`signed_bot_in_thread` runs it on a loop of its own, for tests
that block (Selenium).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator

from aiohttp import WSMsgType, web


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def signed_bot(
    token: str, webhook_checks: bool = True, *, extra_field: bool = False
) -> AsyncIterator[dict]:
    """A webhook and a media stream that refuse requests not signed with ``token``.

    Args:
        token: The auth token it validates signatures with.
        webhook_checks: False: only the stream's upgrade is checked.
        extra_field: Its media messages carry a field Twilio does not take
            (``media.track``): the bot breaks Twilio's rule 31951.
    """
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    seen: dict = {"webhook": [], "stream": [], "starts": [], "start": None}

    async def voice(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = validator.validate(f"{base}/voice", form, signature)
        seen["webhook"].append((ok, form))
        if not ok and webhook_checks:
            return web.Response(status=403, text="bad signature")
        twiml = (
            f'<Response><Connect><Stream url="ws://127.0.0.1:{port}/ws">'
            '<Parameter name="customer" value="42"/></Stream></Connect></Response>'
        )
        return web.Response(text=twiml, content_type="text/xml")

    async def stream(request: web.Request) -> web.StreamResponse:
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = validator.validate(f"ws://127.0.0.1:{port}/ws", {}, signature)
        seen["stream"].append(ok)
        if not ok:
            return web.Response(status=403, text="bad signature")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        start: dict = {}
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            if message["event"] == "start":
                start = seen["start"] = message["start"]
                seen["starts"].append(start)
            elif message["event"] == "media":  # echo the caller, as the bot's voice
                payload = message["media"]["payload"]
                assert base64.b64decode(payload)
                media = {"payload": payload, **({"track": "outbound"} if extra_field else {})}
                await ws.send_str(
                    json.dumps({"event": "media", "streamSid": start["streamSid"], "media": media})
                )
            elif message["event"] == "stop":
                break
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_post("/voice", voice)
    app.router.add_get("/ws", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    seen["url"] = f"{base}/voice"
    try:
        yield seen
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def signed_bot_in_thread(token: str, **options: bool) -> Iterator[dict]:
    """:func:`signed_bot` on an event loop in a thread of its own, for a test that blocks."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bot = signed_bot(token, **options)
    try:
        yield asyncio.run_coroutine_threadsafe(bot.__aenter__(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(bot.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
