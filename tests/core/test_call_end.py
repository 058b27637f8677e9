"""A far end that hangs up normally ends the call cleanly: no error, no lost audio.

Finding of the real-Asterisk run in the reliability issue: Asterisk closes
with 1000 when the channel hangs up, and we reported "server closed with code
1000" as a fatal ConnectionFailure. The same holds for every protocol: a
normal close by the far end is the end of the call. The pipeline ends as
after an EndFrame (an EndWorkerFrame pushed upstream), ``on_disconnected``
fires, ``on_connection_error`` does not. Abnormal ends keep their error.
"""

from __future__ import annotations

import pytest
from pipecat.frames.frames import EndFrame

from harness import client_params, run_pipeline
from pipecat_wsclient import FailureKind, WebsocketClientTransport
from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.retry import is_call_end
from support.servers import closing_server


def watch(transport):
    seen = {"disconnected": [], "errors": []}

    @transport.event_handler("on_disconnected")
    async def on_disconnected(_t, ws):
        seen["disconnected"].append(ws.close_code)

    @transport.event_handler("on_connection_error")
    async def on_error(_t, error):
        seen["errors"].append(error)

    return seen


@pytest.mark.parametrize("reconnect", [True, False], ids=["reconnect on", "reconnect off"])
async def test_server_closing_with_1000_ends_the_pipeline_without_an_error(reconnect):
    async with closing_server(1000, "call ended", after=0.3) as server:
        params = client_params() if reconnect else client_params(reconnect=None)
        t = WebsocketClientTransport(server.uri, params)
        seen = watch(t)
        async with run_pipeline(t) as p:
            await p.wait(5)  # ends by itself
    assert p.errors == []
    assert seen["errors"] == []
    assert seen["disconnected"] == [1000]
    assert server.connections == 1  # not redialed
    ends = p.collector.of(EndFrame)
    assert len(ends) == 1  # ended as after an EndFrame, not cancelled


async def test_abnormal_close_is_still_an_error():
    async with closing_server(4001, "bad request", after=0.2) as server:
        t = WebsocketClientTransport(server.uri, client_params())
        seen = watch(t)
        async with run_pipeline(t) as p:
            await p.wait(5)
    [error] = seen["errors"]
    assert error.kind is FailureKind.CLOSED and error.close_code == 4001
    assert p.errors and p.errors[0].fatal


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (1000, FailureKind.CLOSED, True),
        (1001, FailureKind.CLOSED, False),
        (1006, FailureKind.CLOSED, False),
        (4000, FailureKind.CLOSED, False),
        (1000, FailureKind.MESSAGE_TOO_BIG, False),
    ],
)
def test_is_call_end_only_for_a_normal_close(code, kind, expected):
    failure = ConnectionFailure(kind, "ws://h/ws", "x", close_code=code, during_connect=False)
    assert is_call_end(failure) is expected
