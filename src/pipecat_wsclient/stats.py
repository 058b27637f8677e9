#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Counters a transport keeps while it runs, and snapshots of them.

Plain data, no I/O: the session and the processors bump the counters,
applications read :meth:`WebsocketClientStats.snapshot`. The bot's audio
adds up: every second the pipeline handed the output is in
``audio_secs_sent - end_silence_secs_sent``, ``dropped_audio_secs`` or
``interrupted_audio_secs`` (within a chunk: the last partial chunk of a
stretch of audio is padded with silence).
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
        audio_secs_sent: Seconds of audio sent, the end silence included.
        audio_secs_received: Seconds of audio received and pushed.
        audio_frames_sent: Audio chunks sent.
        decode_errors: Received messages the serializer could not decode.
        messages_ignored: Received messages the serializer returned no frame
            for, or audio with no samples in it.
        dropped_frames: Outbound frames (audio chunks or messages) that could
            not be sent because there was no open connection.
        dropped_audio_secs: Seconds of audio in ``dropped_frames``: audio the
            bot produced that the far end never got (never the end silence).
        dropped_in_messages: Received messages dropped because too many
            arrived before the pipeline started (beyond the hold limit).
        interrupted_audio_secs: Seconds of queued audio discarded by
            interruptions (intentional, not a loss).
        end_silence_secs_sent: Seconds of end silence (``audio_out_end_silence_secs``
            after an ``EndFrame``) sent; part of ``audio_secs_sent``. The bot's
            own audio sent is ``audio_secs_sent - end_silence_secs_sent``.
        end_silence_secs_unsent: Seconds of end silence not sent because the
            connection had ended or was down. Not dropped audio: the transport
            made it, not the bot, and the bot's audio before it went out.
        connects: Connections opened.
        connect_failures: Dial attempts that failed.
        disconnects: Connections that ended.
        connect_time_secs: How long the last successful dial took.
        ping_rtt_secs: The last measured keepalive round trip, if any.
        last_close_code: Close code of the last connection that ended.
        last_close_reason: Close reason of the last connection that ended.
        redirects: Redirects followed at opening handshakes (each logged
            with the redacted URI it led to).
        pings_received: Pings received from the server; each is answered with a
            pong but the one that makes a flood.
        ping_floods: Connections closed with 1008 because the server sent
            pings faster than ``max_pings_per_sec``.
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
    end_silence_secs_sent: float = 0.0
    end_silence_secs_unsent: float = 0.0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    connect_time_secs: float | None = None
    ping_rtt_secs: float | None = None
    last_close_code: int | None = None
    last_close_reason: str = ""
    redirects: int = 0
    pings_received: int = 0
    ping_floods: int = 0

    def snapshot(self) -> WebsocketClientStats:
        """Return a copy that later updates do not change."""
        return dataclasses.replace(self)

    def as_dict(self) -> dict[str, int | float | str | None]:
        """Return the counters as a plain dict (e.g. for JSON)."""
        return dataclasses.asdict(self)
