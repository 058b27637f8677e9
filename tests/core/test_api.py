"""The public API matches the spec (and Pipecat's client, for a one-line switch)."""

import inspect

import pytest
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.websocket import client as pipecat_client
from pydantic import BaseModel

import pipecat_wsclient
from pipecat_wsclient import (
    WebsocketClientCallbacks,
    WebsocketClientInputTransport,
    WebsocketClientOutputTransport,
    WebsocketClientParams,
    WebsocketClientSession,
    WebsocketClientTransport,
)

SIX = [
    "WebsocketClientParams",
    "WebsocketClientCallbacks",
    "WebsocketClientSession",
    "WebsocketClientInputTransport",
    "WebsocketClientOutputTransport",
    "WebsocketClientTransport",
]


def test_six_classes_importable_from_package_root():
    for name in SIX:
        assert name in pipecat_wsclient.__all__
        ours = getattr(pipecat_wsclient, name)
        assert ours.__module__.startswith("pipecat_wsclient")
        # Our own implementation, not Pipecat's.
        assert ours is not getattr(pipecat_client, name)


def test_bases():
    assert issubclass(WebsocketClientParams, TransportParams)
    assert issubclass(WebsocketClientCallbacks, BaseModel)
    assert issubclass(WebsocketClientInputTransport, BaseInputTransport)
    assert issubclass(WebsocketClientOutputTransport, BaseOutputTransport)
    assert issubclass(WebsocketClientTransport, BaseTransport)
    for cls in SIX[1:]:
        ours = getattr(pipecat_wsclient, cls)
        assert not issubclass(ours, getattr(pipecat_client, cls))


def test_params_keep_every_transport_param_default():
    ours = WebsocketClientParams()
    base = TransportParams()
    for name in TransportParams.model_fields:
        assert getattr(ours, name) == getattr(base, name), name
    assert ours.add_wav_header is True
    assert ours.additional_headers is None
    assert ours.serializer is None


def test_params_superset_of_pipecats_client():
    theirs = pipecat_client.WebsocketClientParams()
    ours = WebsocketClientParams()
    for name in pipecat_client.WebsocketClientParams.model_fields:
        assert getattr(ours, name) == getattr(theirs, name), name


def test_voice_defaults():
    p = WebsocketClientParams()
    assert p.compression is None
    assert p.open_timeout == 5.0
    assert p.ping_interval + p.ping_timeout <= 10.0
    assert 0 < p.audio_out_send_lead_secs <= 0.2
    assert p.max_message_size == 2**20


def test_callbacks_fields():
    assert {"on_connected", "on_disconnected", "on_message"} <= set(
        WebsocketClientCallbacks.model_fields
    )


@pytest.mark.parametrize(
    ("cls", "method", "params"),
    [
        (
            WebsocketClientSession,
            "__init__",
            ["self", "uri", "params", "callbacks", "transport_name"],
        ),
        (WebsocketClientSession, "setup", ["self", "task_manager"]),
        (WebsocketClientSession, "connect", ["self"]),
        (WebsocketClientSession, "send", ["self", "message"]),
        (WebsocketClientInputTransport, "__init__", ["self", "transport", "session", "params"]),
        (WebsocketClientInputTransport, "on_message", ["self", "websocket", "message"]),
        (WebsocketClientOutputTransport, "__init__", ["self", "transport", "session", "params"]),
        (WebsocketClientOutputTransport, "send_message", ["self", "frame"]),
        (WebsocketClientOutputTransport, "write_audio_frame", ["self", "frame"]),
        (WebsocketClientTransport, "__init__", ["self", "uri", "params"]),
    ],
)
def test_signatures(cls, method, params):
    assert list(inspect.signature(getattr(cls, method)).parameters) == params


def test_async_methods():
    for cls, names in [
        (WebsocketClientSession, ["setup", "connect", "disconnect", "send"]),
        (
            WebsocketClientInputTransport,
            ["setup", "start", "stop", "cancel", "cleanup", "on_message"],
        ),
        (
            WebsocketClientOutputTransport,
            ["setup", "start", "stop", "cancel", "cleanup", "send_message", "write_audio_frame"],
        ),
    ]:
        for name in names:
            assert inspect.iscoroutinefunction(getattr(cls, name)), f"{cls.__name__}.{name}"
    for prop in ["task_manager", "is_connected", "is_closing"]:
        assert isinstance(inspect.getattr_static(WebsocketClientSession, prop), property)


def test_transport_builds_input_and_output_once():
    t = WebsocketClientTransport("ws://127.0.0.1:9/ws")
    assert t.input() is t.input()
    assert t.output() is t.output()
    assert t.params.serializer is not None
    assert type(t.params.serializer).__name__ == "ProtobufFrameSerializer"
    # Events are Pipecat event handlers.
    for event in ["on_connected", "on_disconnected", "on_connection_error"]:

        @t.event_handler(event)
        async def _handler(*args):
            pass


def test_task_manager_before_setup_is_a_clear_error():
    t = WebsocketClientTransport("ws://127.0.0.1:9/ws")
    with pytest.raises(RuntimeError, match="setup"):
        _ = t.session.task_manager
    assert t.session.is_connected is False
    assert t.session.is_closing is False


@pytest.mark.parametrize("uri", ["http://example.com/ws", "ws://", "not a uri", ""])
def test_invalid_uri_rejected_at_construction(uri):
    with pytest.raises(ValueError):
        WebsocketClientTransport(uri)


def test_invalid_uri_message_redacts_secrets():
    with pytest.raises(ValueError) as info:
        WebsocketClientTransport("https://h/ws?token=SUPERSECRET")
    assert "SUPERSECRET" not in str(info.value)


def test_py_typed_shipped():
    from importlib.resources import files

    assert files("pipecat_wsclient").joinpath("py.typed").is_file()
