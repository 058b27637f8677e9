#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Whether a turn did what its ``expect`` asked (pure, no I/O).

Each failed expectation is one readable line naming the key, the limit and
what was measured, e.g. ``response_ms 1830 > 1500``.

Example::

    result.failures = check_turn(turn.expect, result, kind=turn.kind)
"""

from __future__ import annotations

from pipecat_wsclient.scenario.matching import contains, matches
from pipecat_wsclient.scenario.model import Expect
from pipecat_wsclient.scenario.results import TurnResult


def check_turn(expect: Expect, result: TurnResult, *, kind: str | None = None) -> list[str]:
    """The expectations of one turn that do not hold.

    A ``barge_in`` turn also fails, whatever it expects, when there was no
    barge-in to measure (the answer had ended first, or there was none).

    Args:
        expect: What the turn expects.
        result: What it measured (``transcript`` filled in if the expectations need it).
        kind: The turn's kind (default: ``result.kind``).

    Returns:
        One line per failed expectation, in the order of :class:`Expect`'s fields.
    """
    kind = kind or result.kind
    failures: list[str] = []
    why = "; ".join(result.notes) or "no answer"
    if expect.response_ms_max is not None or expect.response_ms_min is not None:
        if result.response_ms is None:
            failures.append(f"response_ms: not measured ({why})")
        elif expect.response_ms_max is not None and result.response_ms > expect.response_ms_max:
            failures.append(f"response_ms {result.response_ms:.0f} > {expect.response_ms_max:g}")
        elif expect.response_ms_min is not None and result.response_ms < expect.response_ms_min:
            failures.append(f"response_ms {result.response_ms:.0f} < {expect.response_ms_min:g}")
    if expect.needs_transcript:
        failures += _transcript(expect, result.transcript)
    if kind == "barge_in" and result.barge_in_ms is None:
        failures.append(f"barge_in_ms: not measured ({'; '.join(result.notes) or 'no barge-in'})")
    elif expect.barge_in_ms_max is not None and result.barge_in_ms is not None:
        if result.barge_in_ms > expect.barge_in_ms_max:
            failures.append(f"barge_in_ms {result.barge_in_ms:.0f} > {expect.barge_in_ms_max:g}")
    if expect.clear_ms_max is not None:
        if result.clear_ms is None:
            failures.append("clear_ms: the bot sent no clear")
        elif result.clear_ms > expect.clear_ms_max:
            failures.append(f"clear_ms {result.clear_ms:.0f} > {expect.clear_ms_max:g}")
    spoke = result.answer_start_s is not None
    if expect.silent is True and spoke:
        failures.append(f"silent: the bot spoke after {result.response_ms or 0:.0f} ms")
    elif expect.silent is False and not spoke:
        failures.append(f"silent: false, but the bot said nothing ({why})")
    if expect.bot_hangs_up is True and not result.bot_hung_up:
        failures.append("bot_hangs_up: the bot did not end the call")
    elif expect.bot_hangs_up is False and result.bot_hung_up:
        failures.append("bot_hangs_up: false, but the bot ended the call")
    if expect.max_underruns is not None and result.underruns > expect.max_underruns:
        failures.append(f"underruns {result.underruns} > {expect.max_underruns}")
    if (
        expect.answer_secs_max is not None
        and result.answer_secs is not None
        and result.answer_secs > expect.answer_secs_max
    ):
        failures.append(f"answer_secs {result.answer_secs:.2f} > {expect.answer_secs_max:g}")
    return failures


def _transcript(expect: Expect, transcript: str | None) -> list[str]:
    if transcript is None:
        return ["transcript: not transcribed"]
    shown = repr(transcript) if transcript else "nothing (empty transcript)"
    failures = [
        f"transcript_contains {phrase!r}: heard {shown}"
        for phrase in expect.transcript_contains
        if not contains(transcript, phrase)
    ]
    failures += [
        f"transcript_not_contains {phrase!r}: heard {shown}"
        for phrase in expect.transcript_not_contains
        if contains(transcript, phrase)
    ]
    if expect.transcript_matches is not None and not matches(transcript, expect.transcript_matches):
        failures.append(f"transcript_matches {expect.transcript_matches!r}: heard {shown}")
    return failures
