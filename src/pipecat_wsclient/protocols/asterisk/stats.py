#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What happened on an Asterisk media stream: counters (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ERRORS = 100
"""``ERROR`` texts kept in :attr:`AsteriskStats.errors` (the oldest go first)."""


@dataclass
class AsteriskStats:
    """What happened on the media stream (counters only grow).

    Attributes:
        media_starts: ``MEDIA_START`` events.
        xoff: ``MEDIA_XOFF`` events.
        xon: ``MEDIA_XON`` events.
        paused_secs: Time spent paused by ``MEDIA_XOFF``.
        audio_secs_sent: Bot audio sent to Asterisk (returned to the transport
            to write, or written when released), padding included. The
            transport's ``stats.audio_secs_sent`` counts audio handed to the
            serializer, which includes what is still held here.
        held_peak_secs: Most bot audio held at once (XOFF, queue bound, before MEDIA_START).
        dropped_audio_secs: Held bot audio dropped (``max_held_secs``,
            ``end_timeout_secs``, cancel, connection gone, the bound on the
            audio kept before ``MEDIA_START``).
        pre_start_dropped: Bot audio frames dropped from the queue kept before
            ``MEDIA_START`` (beyond ``max_held_secs``; their seconds are in
            ``dropped_audio_secs``).
        interrupted_audio_secs: Held or partial bot audio dropped by an interruption.
        flushes: ``FLUSH_MEDIA`` commands sent.
        dtmf: ``DTMF_END`` events turned into ``InputDTMFFrame``.
        dtmf_ignored: ``DTMF_END`` digits Pipecat has no key for (A-D).
        events: Count per event name, including unknown ones.
        last_status: Parameters of the last ``STATUS``.
        errors: ``error_text`` of the last :data:`MAX_ERRORS` ``ERROR`` events
            (``events["ERROR"]`` counts them all).
    """

    media_starts: int = 0
    xoff: int = 0
    xon: int = 0
    paused_secs: float = 0.0
    audio_secs_sent: float = 0.0
    held_peak_secs: float = 0.0
    dropped_audio_secs: float = 0.0
    interrupted_audio_secs: float = 0.0
    pre_start_dropped: int = 0
    flushes: int = 0
    dtmf: int = 0
    dtmf_ignored: int = 0
    events: Counter[str] = field(default_factory=Counter)
    last_status: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def add_error(self, text: str) -> None:
        """Keep an ``ERROR`` text, the last :data:`MAX_ERRORS` of them."""
        self.errors.append(text)
        del self.errors[:-MAX_ERRORS]
