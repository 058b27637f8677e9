"""User code in the dial path that fails ends the call loudly, with a closed socket.

Defect 1 of the reliability issue: a ``session_start_messages`` (param or
serializer method) that raised, or returned something that is not a list
of str/bytes, escaped the dial: no ErrorFrame, no ``on_connection_error``, the
pipeline ran on silently (or, on a redial, the session stayed RECONNECTING
for good) and the socket was never closed. A ``headers_provider`` that
raised was classed as a network error and retried for 30 s.

Each test runs a real pipeline against a real local server and checks: a
fatal ErrorFrame and one ``on_connection_error`` of kind CALLBACK that name
the callback, the pipeline ending by itself, no retry, and the server seeing
the connection closed (1011) rather than left open.
"""

from __future__ import annotations

import pytest
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import client_params, run_pipeline, wait_for
from pipecat_wsclient import ConnectionFailure, FailureKind, WebsocketClientTransport
from pipecat_wsclient.params import ReconnectParams
from pipecat_wsclient.session import SessionState
from support.restartable import RestartableServer


def errors_of(transport: WebsocketClientTransport) -> list[ConnectionFailure]:
    errors: list[ConnectionFailure] = []

    @transport.event_handler("on_connection_error")
    async def on_error(_t, error):
        errors.append(error)

    return errors


def broken_hello():
    raise ValueError("no credentials configured")


@pytest.mark.parametrize(
    ("provider", "says"),
    [
        (broken_hello, "session_start_messages failed: ValueError: no credentials configured"),
        (lambda: ["ok", 123], "an item of type int (expected str or bytes)"),
        (lambda: "hello", "str instead of a list of str or bytes messages"),
    ],
    ids=["raises", "non-message item", "not a list"],
)
async def test_failing_hello_on_first_dial_is_fatal_and_closes_the_socket(provider, says):
    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(session_start_messages=provider, reconnect=ReconnectParams()),
        )
        errors = errors_of(t)
        async with run_pipeline(t) as p:
            await p.wait(5)  # ends by itself: the error is fatal
        await wait_for(lambda: server.close_codes, 5)
    [error] = errors
    assert error.kind is FailureKind.CALLBACK
    assert says in str(error)
    [frame] = p.errors
    assert frame.fatal and says in frame.error
    assert server.connections == 1  # not retried
    assert server.close_codes == [1011]  # closed, not left open
    assert server.messages == []  # nothing of a half-built hello went out
    assert t.session.state is SessionState.IDLE


class HelloFailsOnRedial(ProtobufFrameSerializer):
    """A serializer whose hello works once, then raises."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    async def session_start_messages(self) -> list[str | bytes]:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("token expired")
        return ['{"event": "hello"}']


async def test_failing_hello_on_redial_ends_the_call_instead_of_reconnecting_forever():
    serializer = HelloFailsOnRedial()
    async with RestartableServer() as server:
        t = WebsocketClientTransport(server.uri, client_params(serializer=serializer))
        errors = errors_of(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await server.stop(graceful=True)
            await server.start()
            await p.wait(5)
        await wait_for(lambda: len(server.close_codes) == 2, 5)
    [error] = errors
    assert error.kind is FailureKind.CALLBACK
    assert "session_start_messages failed: RuntimeError: token expired" in str(error)
    assert "(not retried)" in str(error)
    [frame] = p.errors
    assert frame.fatal
    assert serializer.calls == 2
    assert server.connections == 2
    assert server.close_codes[1] == 1011
    assert t.session.state is SessionState.IDLE


async def test_headers_provider_that_raises_is_not_retried_as_a_network_error():
    calls = []

    def headers():
        calls.append(1)
        raise KeyError("VAULT_TOKEN")

    async with RestartableServer() as server:
        t = WebsocketClientTransport(
            server.uri,
            client_params(
                headers_provider=headers,
                reconnect=ReconnectParams(retry_initial_connect=True, first_delay_secs=0.01),
            ),
        )
        errors = errors_of(t)
        async with run_pipeline(t) as p:
            await p.wait(5)
    [error] = errors
    assert error.kind is FailureKind.CALLBACK
    assert "headers_provider failed: KeyError" in str(error)
    assert len(calls) == 1  # not retried
    assert server.connections == 0  # never dialed without its headers
    [frame] = p.errors
    assert frame.fatal
