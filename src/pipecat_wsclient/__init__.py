#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A WebSocket client transport for Pipecat that keeps calls alive.

Switching from Pipecat's own client is a one-line import change::

    # from pipecat.transports.websocket.client import (
    from pipecat_wsclient import (
        WebsocketClientParams,
        WebsocketClientTransport,
    )
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipecat_wsclient.version import __version__

if TYPE_CHECKING:
    from pipecat_wsclient.errors import (
        ConnectionFailure,
        FailureKind,
        NotConnectedError,
        WebsocketClientError,
        redact_uri,
    )
    from pipecat_wsclient.hooks import ProtocolIO, SerializerHooks
    from pipecat_wsclient.input import WebsocketClientInputTransport
    from pipecat_wsclient.output import WebsocketClientOutputTransport
    from pipecat_wsclient.pacing import PaceClock
    from pipecat_wsclient.params import HeadersProvider, WebsocketClientParams
    from pipecat_wsclient.session import (
        SessionState,
        WebsocketClientCallbacks,
        WebsocketClientSession,
    )
    from pipecat_wsclient.stats import WebsocketClientStats
    from pipecat_wsclient.transport import WebsocketClientTransport

# Where each public name lives. Imported on first use, so that importing a
# part of the package (the command line, the pure modules) does not import
# Pipecat before it is needed (the command line sets up logging first).
_EXPORTS = {
    "ConnectionFailure": "errors",
    "FailureKind": "errors",
    "NotConnectedError": "errors",
    "WebsocketClientError": "errors",
    "redact_uri": "errors",
    "PaceClock": "pacing",
    "ProtocolIO": "hooks",
    "SerializerHooks": "hooks",
    "HeadersProvider": "params",
    "WebsocketClientParams": "params",
    "SessionState": "session",
    "WebsocketClientCallbacks": "session",
    "WebsocketClientSession": "session",
    "WebsocketClientStats": "stats",
    "WebsocketClientInputTransport": "input",
    "WebsocketClientOutputTransport": "output",
    "WebsocketClientTransport": "transport",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipecat_wsclient' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pipecat_wsclient.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ConnectionFailure",
    "FailureKind",
    "HeadersProvider",
    "NotConnectedError",
    "PaceClock",
    "ProtocolIO",
    "SerializerHooks",
    "SessionState",
    "WebsocketClientCallbacks",
    "WebsocketClientError",
    "WebsocketClientInputTransport",
    "WebsocketClientOutputTransport",
    "WebsocketClientParams",
    "WebsocketClientSession",
    "WebsocketClientStats",
    "WebsocketClientTransport",
    "__version__",
    "redact_uri",
]
