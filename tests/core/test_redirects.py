"""Redirects at the opening handshake (issue 24, item 5): credentials never leave the origin.

websockets follows a redirect anywhere and strips only ``Authorization`` and
``Cookie`` when the origin changes: a custom credential header
(``X-Api-Key``) reached another host, and the call reported success under
the original URI. Now a redirect to another origin (host, port or scheme)
fails the dial, naming both URIs redacted, unless
``allow_cross_origin_redirects``; then it is followed without any of the
user's headers or user info. A redirect within the origin is followed with
every header. The rule itself (``dial.redirect_hop``) is pure and tested
first, synchronously; then real servers on 127.0.0.1 (``localhost`` is
another host) and real pipelines.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from loguru import logger
from pipecat.frames.frames import TTSAudioRawFrame
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from harness import RATE, make_transport, pcm, run_pipeline, wait_for
from pipecat_wsclient import ConnectionFailure, FailureKind
from pipecat_wsclient.dial import RedirectHop, RedirectRefused, redirect_hop
from pipecat_wsclient.params import ReconnectParams
from pipecat_wsclient.retry import is_transient
from support.servers import ServerInfo, _record, _serve, record_server, status_server

SECRET = "QUERYSECRET123"
KEY = "APIKEYSECRET456"
QUERY = f"?token={SECRET}&room={SECRET}"
CREDENTIAL_HEADERS = ("x-api-key", "authorization", "cookie")


# -- the rule, pure ---------------------------------------------------------


def hop(original: str, location: str, *, current: str | None = None, allow: bool = False):
    return redirect_hop(original, current or original, location, allow_cross_origin=allow)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/b?x=1", "ws://h:8765/b?x=1"),
        ("b", "ws://h:8765/b"),
        ("ws://h:8765/c", "ws://h:8765/c"),
        ("ws://H:8765/c", "ws://H:8765/c"),  # host names are case-insensitive
    ],
)
def test_a_redirect_within_the_origin_is_followed_with_credentials(location, expected):
    assert hop("ws://h:8765/a", location) == RedirectHop(expected, same_origin=True)


def test_the_default_port_is_the_same_origin():
    assert hop("ws://h/a", "ws://h:80/b").same_origin
    assert hop("wss://h/a", "wss://h:443/b").same_origin


@pytest.mark.parametrize(
    "location",
    [
        "ws://localhost:8765/a",  # another host (the same machine, another name)
        "ws://127.0.0.1:8766/a",  # another port
        "wss://127.0.0.1:8765/a",  # another scheme
        "//other.example/a",  # scheme-relative
    ],
)
def test_a_redirect_to_another_origin_is_refused_by_default(location):
    with pytest.raises(RedirectRefused) as refused:
        hop("ws://127.0.0.1:8765/a", location)
    assert "allow_cross_origin_redirects=True" in refused.value.reason
    assert refused.value.target.endswith("/a")


def test_a_redirect_to_another_origin_when_allowed_loses_the_user_info():
    assert hop("ws://u:p@h/a", "ws://v:q@g/b", allow=True) == RedirectHop(
        "ws://g/b", same_origin=False
    )
    # Within the origin a relative Location keeps it (websockets sends it as Basic auth).
    assert hop("ws://u:p@h/a", "/b") == RedirectHop("ws://u:p@h/b", same_origin=True)


def test_the_origin_is_the_original_uri_not_the_previous_hop():
    # A hop that already left the origin: a relative Location stays off it.
    got = hop("ws://h/a", "/b", current="ws://g/x", allow=True)
    assert got == RedirectHop("ws://g/b", same_origin=False)
    with pytest.raises(RedirectRefused):
        hop("ws://h/a", "/b", current="ws://g/x", allow=False)
    # And one that comes back is the origin again.
    assert hop("ws://h/a", "ws://h/c", current="ws://g/x", allow=True).same_origin


def test_tls_is_never_dropped_even_when_allowed():
    for allow in (False, True):
        with pytest.raises(RedirectRefused) as refused:
            hop("wss://h/a", "ws://h/a", allow=allow)
        assert "drop TLS" in refused.value.reason


@pytest.mark.parametrize("location", ["https://h/a", "http://h/a", "ws://user@g/a", "ws://h/a#f"])
def test_a_redirect_to_what_is_no_websocket_uri_is_refused(location):
    with pytest.raises(RedirectRefused) as refused:
        hop("ws://h/a", location, allow=True)
    assert "not a valid WebSocket URI" in refused.value.reason


# -- real servers -----------------------------------------------------------


@contextlib.asynccontextmanager
async def path_redirect_server(moves: dict[str, str], status: int = 307):
    """Redirect each path in ``moves`` to its ``Location``; accept any other and record.

    Yields:
        The :class:`ServerInfo` (``attempts`` counts redirects answered,
        ``request_headers`` holds those of the connections accepted) and the
        request target of every handshake, in order.
    """
    info = ServerInfo()
    paths: list[str] = []

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        paths.append(request.path)
        path = request.path.partition("?")[0]
        if path in moves:
            info.attempts += 1
            response = connection.respond(status, "moved")
            response.headers["Location"] = moves[path]
            return response
        return None

    async def behaviour(ws: ServerConnection, info: ServerInfo) -> None:
        await _record(ws, info)

    async with _serve(behaviour, info=info, process_request=process_request):
        yield info, paths


@contextlib.asynccontextmanager
async def captured_logs() -> AsyncIterator[list[str]]:
    lines: list[str] = []
    handler_id = logger.add(lines.append, level="TRACE")
    try:
        yield lines
    finally:
        logger.remove(handler_id)


def credential_params(source: str) -> dict:
    """The user's credentials, as static headers or from a provider (called on each dial)."""
    headers = {"X-Api-Key": KEY, "Authorization": f"Bearer {KEY}", "Cookie": f"s={KEY}"}
    if source == "additional_headers":
        return {"additional_headers": headers}
    return {"headers_provider": lambda: dict(headers)}


def assert_no_credentials(headers: dict[str, str]) -> None:
    assert not set(CREDENTIAL_HEADERS) & set(headers), headers
    assert KEY not in repr(headers)


@pytest.mark.parametrize("source", ["additional_headers", "headers_provider"])
@pytest.mark.parametrize("target_host", ["localhost", "127.0.0.1"], ids=["host", "port"])
async def test_a_redirect_to_another_origin_fails_the_call_naming_both_uris(source, target_host):
    async with record_server() as target:
        target_uri = f"ws://{target_host}:{target.port}/ws?sig={SECRET}"
        async with status_server(302, headers={"Location": target_uri}) as first:
            uri = first.uri + QUERY
            # retry_initial_connect on: the refusal must not be retried anyway.
            transport = make_transport(
                uri,
                reconnect=ReconnectParams(retry_initial_connect=True),
                **credential_params(source),
            )
            events: list[ConnectionFailure] = []
            connected: list[object] = []

            @transport.event_handler("on_connection_error")
            async def on_connection_error(_t, error):
                events.append(error)

            @transport.event_handler("on_connected")
            async def on_connected(_t, _ws):
                connected.append(_ws)

            async with captured_logs() as logs, run_pipeline(transport) as p:
                took = await p.wait(5.0)
            print(f"TIMING refused redirect: the pipeline ended after {took:.3f}s")

    assert first.attempts == 1  # not retried
    assert target.connections == 0 and target.request_headers == []  # never dialed
    assert connected == []
    assert transport.stats.connects == 0 and transport.stats.redirects == 0

    assert len(events) == 1, events
    failure = events[0]
    assert failure.kind is FailureKind.HTTP_STATUS and failure.status_code == 302
    assert not is_transient(failure)
    message = str(failure)
    assert "\n" not in message
    expected = (
        f"redirected from ws://127.0.0.1:{first.port}/ws?token=***&room=*** "
        f"to ws://{target_host}:{target.port}/ws?sig=***"
    )
    assert expected in message, message
    assert "allow_cross_origin_redirects=True" in message

    assert len(p.errors) == 1 and p.errors[0].fatal
    assert p.errors[0].exception is failure
    for text in (message, p.errors[0].error, "".join(logs)):
        assert SECRET not in text and KEY not in text


async def test_a_redirect_to_another_host_when_allowed_goes_without_credentials():
    async with record_server() as target:
        target_uri = f"ws://localhost:{target.port}/ws"
        async with status_server(307, headers={"Location": target_uri}) as first:
            host = f"127.0.0.1:{first.port}"
            uri = f"ws://user:{SECRET}@{host}/ws"  # user info: Basic auth at the origin
            transport = make_transport(
                uri, allow_cross_origin_redirects=True, **credential_params("headers_provider")
            )
            async with captured_logs() as logs, run_pipeline(transport) as p:
                audio = pcm(0.4)
                await p.send(TTSAudioRawFrame(audio, RATE, 1))
                await wait_for(lambda: sum(len(m) for m in target.messages) >= len(audio), 5)
                stats = transport.stats
                assert p.errors == []
                await p.end()

    assert first.attempts == 1 and target.connections == 1
    assert_no_credentials(target.request_headers[0])
    assert target.request_headers[0]["host"] == f"localhost:{target.port}"
    assert stats.redirects == 1 and stats.connects == 1
    lines = "".join(logs)
    assert f"redirected to ws://localhost:{target.port}/ws (another origin" in lines
    assert SECRET not in lines and KEY not in lines


async def test_a_redirect_within_the_origin_keeps_every_header():
    moved = f"/new?token={SECRET}"
    async with path_redirect_server({"/old": moved}) as (server, paths):
        uri = f"ws://127.0.0.1:{server.port}/old{QUERY}"
        transport = make_transport(uri, **credential_params("additional_headers"))
        async with captured_logs() as logs, run_pipeline(transport) as p:
            audio = pcm(0.4)
            await p.send(TTSAudioRawFrame(audio, RATE, 1))
            await wait_for(lambda: sum(len(m) for m in server.messages) >= len(audio), 5)
            assert p.errors == []
            await p.end()

    assert server.attempts == 1 and server.connections == 1
    assert paths == [f"/old{QUERY}", moved]
    headers = server.request_headers[0]
    assert headers["x-api-key"] == KEY
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["cookie"] == f"s={KEY}"
    assert transport.stats.redirects == 1
    lines = "".join(logs)
    assert f"redirected to ws://127.0.0.1:{server.port}/new?token=*** (same origin" in lines
    assert SECRET not in lines and KEY not in lines


async def test_a_redirect_loop_fails_once_and_is_not_retried():
    async with path_redirect_server({"/a": "/b", "/b": "/a"}) as (server, _):
        transport = make_transport(f"ws://127.0.0.1:{server.port}/a")
        events: list[ConnectionFailure] = []

        @transport.event_handler("on_connection_error")
        async def on_connection_error(_t, error):
            events.append(error)

        start = time.monotonic()
        async with run_pipeline(transport) as p:
            await p.wait(5.0)
        took = time.monotonic() - start
    assert len(events) == 1 and "redirects" in str(events[0]), events
    assert server.connections == 0 and server.attempts >= 2
    assert took < 5.0
