#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Parameters of the WebSocket client transport."""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.base_transport import TransportParams
from pydantic import BaseModel, ConfigDict, Field

from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.flood import DEFAULT_MAX_PINGS_PER_SEC
from pipecat_wsclient.pacing import DEFAULT_LEAD_SECS
from pipecat_wsclient.version import __version__

HeadersProvider = Callable[[], Mapping[str, str] | Awaitable[Mapping[str, str]]]
"""A callable returning extra handshake headers, sync or async (e.g. a fresh token)."""

DEFAULT_USER_AGENT = f"pipecat-wsclient/{__version__}"

CANCEL_CLOSE_TIMEOUT_SECS = 0.5
"""Bound for the closing handshake on ``CancelFrame``, which must end promptly."""

CANCEL_HANGUP_TIMEOUT_SECS = 0.25
"""Bound for a protocol's hang-up message on ``CancelFrame``; past it the socket is dropped."""

FailureClassifier = Callable[[ConnectionFailure], bool | None]
"""Decides whether a failure is retried: True/False, or None to use the default."""

SessionStartMessages = Callable[[], "list[str | bytes] | Awaitable[list[str | bytes]]"]
"""Returns the messages to send first on every (re)connection (a protocol's hello)."""


class ReconnectParams(BaseModel):
    """When and how a transport reconnects after losing its connection.

    The call goes on during the outage: outbound audio is kept (up to
    ``buffer_audio_secs``, oldest dropped first) and sent once the connection
    is back; only when the policy gives up does a fatal ``ErrorFrame`` end
    the pipeline. See :func:`pipecat_wsclient.retry.is_transient` for which
    failures are retried.

    Parameters:
        first_delay_secs: Delay before the first attempt (not jittered).
        backoff_factor: Growth of the delay per attempt.
        max_delay_secs: Cap on the delay between attempts.
        jitter: Relative random spread of each delay after the first.
        max_attempts: Give up after this many attempts per outage (None: no limit).
        max_outage_secs: Give up when an outage would last longer (None: no limit).
        retry_initial_connect: Also retry when the very first dial fails. Off by
            default: a call that never connected fails at once, loudly.
        classifier: Your own decision per failure (True retry, False give up,
            None fall back to the default classification).
        buffer_audio_secs: Outbound audio kept during an outage, in seconds.
        buffer_max_messages: Outbound non-audio messages kept during an outage.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    first_delay_secs: float = Field(default=0.05, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    max_delay_secs: float = Field(default=1.0, gt=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    max_attempts: int | None = Field(default=None, ge=1)
    max_outage_secs: float | None = Field(default=30.0, gt=0)
    retry_initial_connect: bool = False
    classifier: FailureClassifier | None = None
    buffer_audio_secs: float = Field(default=2.0, ge=0)
    buffer_max_messages: int = Field(default=100, ge=0)


class WebsocketClientParams(TransportParams):
    """Configuration parameters for WebSocket client transport.

    Every :class:`~pipecat.transports.base_transport.TransportParams` field
    applies with its default. The first three fields are those of Pipecat's
    own client; the rest are ours, with defaults chosen for real-time voice.

    Parameters:
        add_wav_header: Whether to add WAV headers to audio frames. Defaults to
            True, as in Pipecat's client; set it to False when the peer is one
            of Pipecat's own server transports, which would play the 44-byte
            header of every chunk as audio.
        additional_headers: Static HTTP headers sent with the opening handshake.
        serializer: Frame serializer for encoding/decoding messages. Defaults
            to Pipecat's ``ProtobufFrameSerializer``.
        open_timeout: Seconds the opening handshake (TCP, TLS, HTTP upgrade)
            may take; ``None`` waits forever.
        close_timeout: Seconds the closing handshake may take before the
            socket is dropped; ``None`` waits forever.
        write_timeout: Seconds a single send may block because the peer does
            not read; past it the connection counts as lost (and the
            reconnect policy applies). It replaces the base class's
            ``audio_out_write_timeout_secs`` bound on each audio write, which
            only applies when this is ``None``.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds a ping may stay unanswered before the connection
            counts as lost; ``None`` never times out. With the defaults a dead
            peer is noticed within ``ping_interval + ping_timeout +
            close_timeout`` = 10 s.
        max_message_size: Largest incoming message in bytes; a bigger one
            closes the connection with code 1009. ``None`` means no limit.
        compression: ``"deflate"`` to negotiate permessage-deflate. Off by
            default: audio does not compress and deflate costs CPU.
        subprotocols: WebSocket subprotocols to offer, in order of preference.
        ssl: TLS for ``wss://``: an ``ssl.SSLContext`` (e.g. trusting a private
            CA), ``True``/``None`` for the system defaults, or ``False`` to skip
            certificate verification (insecure; logged as a warning).
        proxy: Proxy URI, ``True`` to use the proxy environment variables (the
            ``websockets`` default), or ``None``/``False`` for a direct
            connection.
        user_agent: ``User-Agent`` header; ``None`` sends none.
        headers_provider: Callable (sync or async) returning extra headers,
            called on every connect; its headers override
            ``additional_headers``.
        audio_out_send_lead_secs: How far ahead of real time outbound audio may
            be sent, so the far end has a little buffered and never starves.
        audio_out_downstream_secs: Written audio is pushed downstream (to
            recorders after ``transport.output()``) in frames of about this much
            audio instead of one frame per chunk, which costs every processor
            and observer downstream a turn per 20-40 ms. Same bytes, same
            order, never held while nothing more is queued. ``0`` pushes every
            chunk, as Pipecat's transports do.
        reconnect: The reconnect policy, on by default; ``None`` turns
            reconnection off (a lost connection then ends the pipeline).
        session_start_messages: Callable (sync or async) returning messages to
            send first on every connection and reconnection, e.g. a protocol's
            hello. A serializer with a ``session_start_messages()`` method is
            asked too (its messages go first).
        allow_cross_origin_redirects: Follow a redirect at the opening
            handshake (HTTP 301, 302, 303, 307, 308 with a ``Location``) to
            another origin: another host, port or scheme than the URI's. Off
            by default: such a redirect fails the dial (``HTTP_STATUS`` with
            the 3xx status, not retried), naming both URIs. On, it is
            followed without credentials: no header of ``additional_headers``
            or ``headers_provider`` and no user info go past the original
            origin, for the rest of that dial. Redirects within the origin
            (another path) are followed with every header; a redirect from
            ``wss://`` to ``ws://`` is never followed.
        max_pings_per_sec: Most pings (and unsolicited pongs) per second the
            server may send, sustained, with a burst of 2 s' worth on top. A
            server over it floods us: each ping costs a parse and a pong, and
            a flood takes the event loop from the call's audio. The connection
            is then closed with 1008 (policy violation, ``"ping flood"``),
            which is reported as the connection's failure (not retried unless
            the reconnect classifier says so) and counted in
            ``stats.ping_floods``. The default (50, a ping every 20 ms) is far
            above any keepalive (seconds apart); ``None`` turns the guard off.
    """

    add_wav_header: bool = True
    additional_headers: dict[str, str] | None = None
    serializer: FrameSerializer | None = None

    open_timeout: float | None = Field(default=5.0, gt=0)
    close_timeout: float | None = Field(default=2.0, gt=0)
    write_timeout: float | None = Field(default=5.0, gt=0)
    ping_interval: float | None = Field(default=4.0, gt=0)
    ping_timeout: float | None = Field(default=4.0, gt=0)
    max_message_size: int | None = Field(default=2**20, gt=0)
    compression: Literal["deflate"] | None = None
    subprotocols: list[str] | None = None
    ssl: ssl_module.SSLContext | bool | None = None
    proxy: str | bool | None = True
    user_agent: str | None = DEFAULT_USER_AGENT
    headers_provider: HeadersProvider | None = None
    audio_out_send_lead_secs: float = Field(default=DEFAULT_LEAD_SECS, ge=0)
    audio_out_downstream_secs: float = Field(default=0.1, ge=0)
    reconnect: ReconnectParams | None = Field(default_factory=ReconnectParams)
    session_start_messages: SessionStartMessages | None = None
    allow_cross_origin_redirects: bool = False
    max_pings_per_sec: float | None = Field(default=DEFAULT_MAX_PINGS_PER_SEC, gt=0)
