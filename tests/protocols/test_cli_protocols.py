"""The command line's protocol registry and shared options."""

from __future__ import annotations

import pytest
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient.cli.options import parse_headers
from pipecat_wsclient.protocols import RawPCMSerializer, TwilioCarrierSerializer
from pipecat_wsclient.protocols.registry import PROTOCOLS, get_protocol, or_list, protocol_names


def test_every_protocol_has_one_entry_in_order():
    assert protocol_names() == ["pipecat", "raw", "twilio", "telnyx", "plivo", "exotel", "vonage"]
    assert protocol_names(served=True) == ["pipecat", "raw"]
    assert all(p.help for p in PROTOCOLS.values())


def test_serializers_are_built_per_call():
    assert isinstance(get_protocol("pipecat").serializer(16000), ProtobufFrameSerializer)
    assert isinstance(get_protocol("raw").serializer(8000), RawPCMSerializer)
    assert isinstance(get_protocol("twilio").serializer(16000), TwilioCarrierSerializer)
    a, b = (get_protocol("raw").serializer(16000) for _ in range(2))
    assert a is not b


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown protocol 'nope' \(choose from pipecat, raw, "):
        get_protocol("nope")
    with pytest.raises(
        ValueError, match=r"^unknown protocol 'twilio' \(choose from pipecat, raw\)$"
    ):
        get_protocol("twilio", served=True)


def test_or_list():
    assert or_list(["a"]) == "a"
    assert or_list(["a", "b"]) == "a or b"
    assert or_list(["a", "b", "c"]) == "a, b or c"


def test_parse_headers():
    assert parse_headers(None) == {}
    assert parse_headers(["X-A: 1", "Authorization:Bearer t:k"]) == {
        "X-A": "1",
        "Authorization": "Bearer t:k",
    }
    for bad in ("no-colon", ": value"):
        with pytest.raises(ValueError, match="--header wants NAME: VALUE"):
            parse_headers([bad])
