#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Counters a transport keeps while it runs, and snapshots of them.

Plain data, no I/O: the session and the processors bump the counters,
applications read :meth:`WebsocketClientStats.snapshot`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class WebsocketClientStats:
    """Counters of one transport (all connections it made).

    Parameters:
        bytes_in: Payload bytes received (text counted as UTF-8).
        bytes_out: Payload bytes sent.
        messages_in: Messages received.
        messages_out: Messages sent.
        audio_secs_sent: Seconds of audio sent.
        audio_secs_received: Seconds of audio received and pushed.
        audio_frames_sent: Audio chunks sent.
        decode_errors: Received messages the serializer could not decode.
        messages_ignored: Received messages the serializer returned no frame
            for, or audio with no samples in it.
        dropped_frames: Outbound frames (audio chunks or messages) that could
            not be sent because there was no open connection.
        dropped_audio_secs: Seconds of audio in ``dropped_frames``.
        dropped_in_messages: Received messages dropped because too many
            arrived before the pipeline started (beyond the hold limit).
        interrupted_audio_secs: Seconds of queued audio discarded by
            interruptions (intentional, not a loss).
        connects: Connections opened.
        connect_failures: Dial attempts that failed.
        disconnects: Connections that ended.
        connect_time_secs: How long the last successful dial took.
        ping_rtt_secs: The last measured keepalive round trip, if any.
        last_close_code: Close code of the last connection that ended.
        last_close_reason: Close reason of the last connection that ended.
    """

    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    audio_secs_sent: float = 0.0
    audio_secs_received: float = 0.0
    audio_frames_sent: int = 0
    decode_errors: int = 0
    messages_ignored: int = 0
    dropped_frames: int = 0
    dropped_audio_secs: float = 0.0
    dropped_in_messages: int = 0
    interrupted_audio_secs: float = 0.0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    connect_time_secs: float | None = None
    ping_rtt_secs: float | None = None
    last_close_code: int | None = None
    last_close_reason: str = ""

    def snapshot(self) -> WebsocketClientStats:
        """Return a copy that later updates do not change."""
        return dataclasses.replace(self)

    def as_dict(self) -> dict[str, int | float | str | None]:
        """Return the counters as a plain dict (e.g. for JSON)."""
        return dataclasses.asdict(self)
