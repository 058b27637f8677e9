#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A scripted call's figures by the turn engine's rules: :func:`apply_turn_rules` (pure).

The scenario's waits decide *when* to speak (the next line after the
answer, a barge-in 600 ms into it); they poll the line live. The figures
reported (response, overlap, barge-in, clear, the greeting) come from the
one turn engine that ``call``, ``load``, the phone and the Locust users use
(:mod:`pipecat_wsclient.audio.turns`), run over the recorded call once it
has ended, so that every command reports the same figures for the same bot.

A turn with speech of ours (``say``, ``play``, ``barge_in``) is matched to
the engine's utterance that starts within :data:`MATCH_SECS` of its speech:

- ``response_ms``: the engine's latency to the first fresh answer after
  our speech; when the bot instead began answering while we were still
  talking (an overlap: an echo, a bot that talks over us), minus the
  overlap, with a note; None (with a note) when the engine heard no answer
  (the bot went on with what it was saying: no answer to this turn);
- ``barge_in_ms`` and ``clear_ms``: the engine's barge-in whose onset is
  our speech's (none: the bot was not talking when we began).

DTMF, ``listen`` and ``wait`` turns have no speech of ours: their figures
stay the waits' (from the last key, the start of the listen or wait).

Example::

    engine = replay(line.sent_track, line.heard_track, clears)
    greeting = apply_turn_rules(results, engine, t0=call.t0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from pipecat_wsclient.audio.turns import BargeIn, Greeting, TurnEngine, TurnUpdate
from pipecat_wsclient.scenario.results import TurnResult

MATCH_SECS = 0.15
"""How far the engine's utterance onset may be from a turn's speech start (window grids)."""

_T = TypeVar("_T")

NO_FRESH_ANSWER = "no answer: the bot's audio after our speech went on with what it was saying"


def apply_turn_rules(
    results: Iterable[TurnResult], engine: TurnEngine, *, t0: float
) -> Greeting | None:
    """Set each spoken turn's response and barge-in figures from the finished engine.

    Args:
        results: The call's turns (times in seconds from ``t0``); changed in place.
        engine: The engine after :meth:`~pipecat_wsclient.audio.turns.TurnEngine.finish`,
            fed the call's audio on the clock ``t0`` is on.
        t0: The call's start on that clock.

    Returns:
        The greeting the engine found (None: the bot did not speak first).
    """
    for result in results:
        if result.speech_start_s is None:
            continue
        onset = t0 + result.speech_start_s
        turn = _nearest(engine.turns, onset, lambda t: t.utterance_start)
        if turn is not None:
            _set_response(result, turn, t0)
        if result.kind == "barge_in":
            barge = _nearest(engine.barge_ins, onset, lambda b: b.onset)
            _set_barge_in(result, barge)
    return engine.greeting


def _nearest(items: Sequence[_T], onset: float, when: Callable[[_T], float]) -> _T | None:
    best = min(items, key=lambda item: abs(when(item) - onset), default=None)
    if best is None or abs(when(best) - onset) > MATCH_SECS:
        return None
    return best


def _set_response(result: TurnResult, turn: TurnUpdate, t0: float) -> None:
    result.notes = [n for n in result.notes if not n.startswith("the bot began answering")]
    if turn.answer_start is not None:
        result.response_ms = round((turn.answer_start - turn.utterance_end) * 1000, 1)
        start = round(turn.answer_start - t0, 3)
    elif turn.overlap_start is not None:
        overlap = turn.utterance_end - turn.overlap_start
        result.response_ms = round(-overlap * 1000, 1)
        start = round(turn.overlap_start - t0, 3)
        result.notes.append(
            f"the bot began answering {overlap * 1000:.0f} ms"
            " before our speech ended (an overlap: an echo, or a bot that talks over us)"
        )
    else:
        if result.response_ms is not None:
            result.notes.append(NO_FRESH_ANSWER)
        result.response_ms = None
        result.answer_start_s = result.answer_end_s = result.answer_secs = None
        return
    result.answer_start_s = start
    if result.answer_end_s is not None:
        result.answer_secs = round(max(0.0, result.answer_end_s - start), 3)


def _set_barge_in(result: TurnResult, barge: BargeIn | None) -> None:
    if barge is None:
        if result.barge_in_ms is not None:
            result.notes.append("no barge-in: the bot was not talking when we began")
        result.barge_in_ms = result.clear_ms = None
        return
    result.barge_in_ms = round(barge.reaction * 1000, 1)
    result.clear_ms = None if barge.clear is None else round((barge.clear - barge.onset) * 1000, 1)
