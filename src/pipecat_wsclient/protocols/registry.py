#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The wire protocols the command line speaks: one registry for every command.

``call``, ``load``, ``serve`` and the Locust user list, validate and build
their protocols from :data:`PROTOCOLS` only. To add a protocol, add one
:class:`WireProtocol` entry here: the commands' ``--protocol`` help, their
usage errors and Locust's check follow.

Example::

    from pipecat_wsclient.protocols.registry import PROTOCOLS, get_protocol

    serializer = get_protocol("twilio").serializer(16000)
    served = [p.name for p in PROTOCOLS.values() if p.served]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_wsclient.protocols import (
    ExotelCarrierSerializer,
    PlivoCarrierSerializer,
    RawPCMSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
    VonageCarrierSerializer,
)


@dataclass(frozen=True)
class WireProtocol:
    """One protocol the command line speaks.

    Parameters:
        name: What ``--protocol`` takes.
        serializer: Builds the serializer for one connection, given the
            pipeline's sample rate. ``call``, ``load`` and Locust use it as
            the client's serializer; ``serve`` (when ``served``) decodes what
            callers send and encodes its answers with it.
        served: Whether ``serve`` (the local test server) speaks it.
        help: One line on what travels on the wire.
        carrier: The carrier serializer's class, for a carrier's protocol: its
            keyword arguments (the call's ids, custom parameters) are what
            :func:`make_serializer` accepts.
    """

    name: str
    serializer: Callable[[int], FrameSerializer]
    served: bool
    help: str
    carrier: type[FrameSerializer] | None = None


def _carrier(name: str, serializer: type[FrameSerializer], help: str) -> WireProtocol:
    """A carrier's side of a phone call's media stream, for the client commands only.

    The carrier serializer sets the wire's rate (8 kHz; 16 kHz L16 for Vonage), so
    the pipeline's rate is not passed on.
    """
    return WireProtocol(
        name, lambda rate: serializer(), served=False, help=help, carrier=serializer
    )


PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p
    for p in (
        WireProtocol(
            "pipecat",
            lambda rate: ProtobufFrameSerializer(),
            served=True,
            help="Pipecat's protobuf frames, as its WebSocket transports speak.",
        ),
        WireProtocol(
            "raw",
            lambda rate: RawPCMSerializer(sample_rate=rate),
            served=True,
            help="16-bit mono PCM in binary messages, JSON in text ones.",
        ),
        _carrier("twilio", TwilioCarrierSerializer, "Twilio Media Streams: mu-law 8 kHz in JSON."),
        _carrier("telnyx", TelnyxCarrierSerializer, "Telnyx media streaming: PCMU 8 kHz in JSON."),
        _carrier("plivo", PlivoCarrierSerializer, "Plivo audio streams: mu-law 8 kHz in JSON."),
        _carrier("exotel", ExotelCarrierSerializer, "Exotel voicebot: 16-bit PCM 8 kHz in JSON."),
        _carrier("vonage", VonageCarrierSerializer, "Vonage WebSockets: binary L16, JSON events."),
    )
}
"""Every protocol by name, in the order the commands list them."""


def protocol_names(*, served: bool = False) -> list[str]:
    """The protocols' names, in registry order.

    Args:
        served: Only those ``serve`` speaks.

    Returns:
        The names, e.g. ``["pipecat", "raw", "twilio", ...]``.
    """
    return [p.name for p in PROTOCOLS.values() if p.served or not served]


def get_protocol(name: str, *, served: bool = False) -> WireProtocol:
    """The protocol called ``name``.

    Args:
        name: A ``--protocol`` value.
        served: Accept only a protocol ``serve`` speaks.

    Returns:
        Its registry entry.

    Raises:
        ValueError: ``unknown protocol 'x' (choose from pipecat, raw, ...)``.
    """
    protocol = PROTOCOLS.get(name)
    if protocol is None or (served and not protocol.served):
        names = ", ".join(protocol_names(served=served))
        raise ValueError(f"unknown protocol {name!r} (choose from {names})")
    return protocol


_NOT_CARRIER_FIELDS = ("custom_parameters", "headers", "tracks", "media_format")
"""Keyword arguments that ``--carrier K=V`` cannot give (``--param`` or not strings)."""


def carrier_fields(name: str) -> list[str]:
    """The ``--carrier`` keys a protocol takes: its serializer's keyword arguments.

    Args:
        name: A ``--protocol`` value.

    Returns:
        The names (e.g. ``call_sid``, ``stream_sid``), empty for a protocol
        that is not a carrier's.
    """
    carrier = get_protocol(name).carrier
    if carrier is None:
        return []
    return [
        p.name
        for p in inspect.signature(carrier).parameters.values()
        if p.kind == p.KEYWORD_ONLY and p.name not in _NOT_CARRIER_FIELDS
    ]


def make_serializer(
    name: str,
    rate: int,
    *,
    carrier: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> FrameSerializer:
    """Build a protocol's serializer with the call's ids and custom parameters.

    Args:
        name: A ``--protocol`` value.
        rate: The pipeline's sample rate.
        carrier: ``--carrier K=V``: keyword arguments of the carrier's
            serializer (``call_sid``, ``stream_sid``, ``from_number``...); a
            value is converted to the argument's type when its default is a number.
        params: ``--param K=V``: the custom parameters of the start message
            (Vonage: the ``headers`` of ``websocket:connected``).

    Returns:
        The serializer.

    Raises:
        ValueError: For an unknown protocol, or a key the protocol does not take
            (the message lists the keys it takes).
    """
    protocol = get_protocol(name)
    if not carrier and not params:
        return protocol.serializer(rate)
    if protocol.carrier is None:
        raise ValueError(
            f"--carrier and --param apply to a carrier's protocol ({or_list(_carriers())}), "
            f"not {name!r}"
        )
    signature = inspect.signature(protocol.carrier).parameters
    allowed = carrier_fields(name)
    kwargs: dict[str, object] = {}
    for key, value in (carrier or {}).items():
        if key not in allowed:
            raise ValueError(f"--carrier {key}: {name} takes {', '.join(allowed)}")
        default = signature[key].default
        try:
            kwargs[key] = type(default)(value) if isinstance(default, int | float) else value
        except ValueError:
            raise ValueError(f"--carrier {key}={value!r}: not a number") from None
    if params:
        kwargs["headers" if "headers" in signature else "custom_parameters"] = dict(params)
    build: Callable[..., FrameSerializer] = protocol.carrier
    return build(**kwargs)


def _carriers() -> list[str]:
    return [p.name for p in PROTOCOLS.values() if p.carrier is not None]


def or_list(names: Iterable[str]) -> str:
    """``a, b or c``: names for a sentence."""
    items = list(names)
    return " or ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)
