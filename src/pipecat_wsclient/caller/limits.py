#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The sane ranges of every rate, duration and size a command takes (pure).

Issue 25, item 4. A value outside them is a usage error (one line, exit 2,
before any connection), wherever it comes from: an option (typer's
``min``/``max``), a scenario file (:mod:`pipecat_wsclient.scenario.model`)
or a WAV header (:mod:`pipecat_wsclient.audio.wav`). Without them a rate of
1 Hz made Pipecat's output cut audio into chunks of 0 bytes, forever, on
the event loop (100 % of a core, 80 MB/s, no signal seen), and a scenario's
``sample_rate: 1e11`` asked for 24 GB.

Example::

    check_rate(rate, "--sample-rate")   # ValueError outside 8000..48000
"""

from __future__ import annotations

RATE_MIN = 8000
"""Lowest pipeline rate: a phone line's (Twilio, Telnyx, Plivo, Exotel are 8 kHz)."""

RATE_MAX = 48000
"""Highest pipeline rate: what Pipecat's transports and TTS services run at, at most."""

MAX_SECS = 24 * 3600.0
"""Longest duration, timeout or wait anywhere (a day)."""

MAX_MS = MAX_SECS * 1000
"""The same in milliseconds (``stop_silence_ms``, ``after_ms``, expectations)."""

MAX_CALLS = 1_000_000
"""Most calls one ``load`` run makes."""

MAX_CONCURRENCY = 10_000
"""Most calls at once (``load --concurrency``, ``test --concurrency``)."""

MAX_RAMP = 1000.0
"""Most new calls per second."""

MAX_TURNS = 1000
"""Most turns per call (``load --turns``; a scenario's turns)."""

MAX_PROCESSES = 64
"""Most worker processes of ``load --processes``."""

MAX_SCRIPT_SECS = 3600.0
"""Longest script a ``load`` caller plays: turns x (clip + think), held in memory."""


def check_rate(rate: int | None, where: str) -> None:
    """Fail if a pipeline sample rate is outside :data:`RATE_MIN`..:data:`RATE_MAX`.

    Args:
        rate: The rate (None: the protocol's own, always fine).
        where: The option or key, for the message.

    Raises:
        ValueError: One line naming ``where``, the rate and the range.
    """
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, int) or not RATE_MIN <= rate <= RATE_MAX:
        raise ValueError(f"{where} {rate!r}: a sample rate is {RATE_MIN}..{RATE_MAX} Hz")
