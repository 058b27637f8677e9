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

from pipecat_wsclient.errors import (
    ConnectionFailure,
    FailureKind,
    NotConnectedError,
    WebsocketClientError,
    redact_uri,
)
from pipecat_wsclient.pacing import PaceClock
from pipecat_wsclient.params import HeadersProvider, WebsocketClientParams
from pipecat_wsclient.session import (
    SessionState,
    WebsocketClientCallbacks,
    WebsocketClientSession,
)
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.transport import (
    WebsocketClientInputTransport,
    WebsocketClientOutputTransport,
    WebsocketClientTransport,
)
from pipecat_wsclient.version import __version__

__all__ = [
    "ConnectionFailure",
    "FailureKind",
    "HeadersProvider",
    "NotConnectedError",
    "PaceClock",
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
