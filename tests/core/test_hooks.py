"""The serializer hooks (hooks.py), exercised by the README's custom protocol example.

A real server on 127.0.0.1 and a real pipeline: the hello goes first, a ping
is answered through ProtocolIO, DTMF goes on the wire, a list payload is sent
as that many messages in order, then the connection closes with 1000.
"""

import base64
import importlib.util
import json
from pathlib import Path

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import InputAudioRawFrame, OutputDTMFUrgentFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from harness import client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import SerializerHooks, WebsocketClientTransport, hooks
from support.servers import record_server

EXAMPLE = Path(__file__).parents[2] / "examples" / "custom_protocol.py"


def load_example():
    spec = importlib.util.spec_from_file_location("custom_protocol", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hooks_are_found_by_name_and_absent_ones_are_none():
    serializer = load_example().JsonEventSerializer()
    assert isinstance(serializer, SerializerHooks)
    assert hooks.attach_hook(serializer) is not None
    assert hooks.session_start_hook(serializer) is not None
    assert hooks.supports_native_dtmf(serializer)
    stock = ProtobufFrameSerializer()
    assert hooks.attach_hook(stock) is None
    assert hooks.session_start_hook(stock) is None
    assert not hooks.supports_native_dtmf(stock)


def test_iter_messages_keeps_order_and_skips_empty_payloads():
    assert list(hooks.iter_messages(None)) == []
    assert list(hooks.iter_messages(b"")) == []
    assert list(hooks.iter_messages("a")) == ["a"]
    assert list(hooks.iter_messages([b"a", "b", b"c"])) == [b"a", "b", b"c"]


@pytest.mark.parametrize("sync", [True, False])
async def test_call_maybe_async_takes_sync_and_async_providers(sync):
    async def async_provider():
        return ["x"]

    provider = (lambda: ["x"]) if sync else async_provider
    assert await hooks.call_maybe_async(provider) == ["x"]


async def test_custom_protocol_hello_ping_dtmf_and_list_payload_on_the_wire():
    example = load_example()
    audio = pcm(0.1)
    greeting = [
        json.dumps({"event": "ping", "id": 7}),
        json.dumps({"event": "audio", "pcm": base64.b64encode(audio).decode()}),
    ]
    async with record_server(send_on_connect=greeting) as server:
        params = client_params(serializer=example.JsonEventSerializer())
        transport = WebsocketClientTransport(server.uri, params)
        async with run_pipeline(transport) as running:
            await wait_for(lambda: running.collector.audio() == audio)
            await running.send(OutputDTMFUrgentFrame(button=KeypadEntry.POUND))
            await wait_for(lambda: len(server.messages) >= 3)
            await running.end()
        await wait_for(lambda: server.close_codes == [1000])

    events = [json.loads(m)["event"] for m in server.messages]
    assert events == ["hello", "pong", "dtmf", "flush", "bye"]
    assert json.loads(server.messages[1])["id"] == 7
    assert json.loads(server.messages[2])["digit"] == "#"
    assert [f.audio for f in running.collector.of(InputAudioRawFrame)] == [audio]
