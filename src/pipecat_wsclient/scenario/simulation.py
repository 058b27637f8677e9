#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A simulated caller over the phone line, then the judge: :func:`run_simulation`.

One job: the conversation of a ``persona:`` scenario, black-box. The
persona's LLM (:class:`~pipecat_wsclient.scenario.persona_llm.PersonaMind`,
Pipecat's ``EvalPersona``) hears the bot through our speech-to-text and
speaks through our TTS, on a :class:`~pipecat_wsclient.scenario.call.VoiceCall`
of any protocol. It lets a greeting finish, speaks first when the bot stays
silent (``speak_first_after_s``), may talk over a long answer
(``interrupt_after_s``), and the call ends when the persona calls
``end_call``, the bot hangs up, or ``max_turns``, ``max_duration_s`` or
``max_silence_s`` is reached. Then Pipecat's ``EvalSimulationJudge`` judges
the conversation: the goal (``success``) and each criterion metric; the
measured metrics (turns, duration, words, latency) come from the call.

Example::

    async with VoiceCall(uri, protocol="twilio") as call:
        outcome = await run_simulation(call, scenario.simulation)
    print(outcome.passed, outcome.goal["reason"])
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from pipecat_wsclient.scenario.call import VoiceCall
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE, Simulation
from pipecat_wsclient.scenario.results import TurnResult
from pipecat_wsclient.scenario.stt import Transcriber

CLOSING_REPLY_WAIT_S = 15.0
"""How long the bot has to answer the persona's last line (as ``pipecat.evals``)."""

FAILED_ENDS = ("max_turns", "max_duration", "silence", "error")
"""How a run may end without succeeding, whatever the judge says (as ``pipecat.evals``)."""


@dataclass
class _Line:
    role: str  # "user" (the persona) or "assistant" (the bot)
    content: str
    turn: TurnResult
    interrupted: bool = False  # a bot line the persona talked over


@dataclass
class SimulationOutcome:
    """What a simulated call did and what the judge decided.

    Parameters:
        ended_by: ``end_call``, ``bot``, ``max_turns``, ``max_duration``,
            ``silence`` or ``error`` (as ``pipecat.evals`` names them).
        turns: The persona's turns.
        duration_s: From the call's start to its end.
        conversation: Both sides, in order: ``role`` (``caller`` or ``bot``),
            ``text``, ``start_s`` and ``end_s`` (from the call's start), and
            ``interrupted`` for a bot line the persona talked over.
        end_call: The persona's own claim (``success``, ``reason``), if it hung up.
        goal: The judge's verdict on ``success``: ``verdict`` (yes, no, none),
            ``reason``, ``confidence``.
        metrics: Each metric: ``name``, ``kind`` (judged, measured, not
            observable), ``score``, ``passed``, ``reason``, ``min_score``,
            ``verdicts`` (per bot turn, for a judged one).
        error: What stopped the run or the judge, if anything did.
    """

    ended_by: str = "error"
    turns: int = 0
    duration_s: float = 0.0
    conversation: list[dict[str, Any]] = field(default_factory=list)
    end_call: dict[str, Any] | None = None
    goal: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    _lines: list[_Line] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        """The judge said yes to the goal, every metric passed, and the run ended properly."""
        return (
            self.error is None
            and self.ended_by not in FAILED_ENDS
            and self.goal.get("verdict") == "yes"
            and all(m["passed"] for m in self.metrics if m["kind"] != NOT_OBSERVABLE)
        )

    def failures(self) -> list[str]:
        """Why it did not pass, one line each (empty if it passed)."""
        found = []
        if self.error is not None:
            found.append(self.error)
        if self.ended_by in FAILED_ENDS and self.ended_by != "error":
            found.append(f"the call ended by {self.ended_by} after {self.turns} turn(s)")
        if self.goal and self.goal.get("verdict") != "yes":
            found.append(f"goal not achieved: {self.goal.get('reason') or 'no reason given'}")
        for metric in self.metrics:
            if not metric["passed"] and metric["kind"] != NOT_OBSERVABLE:
                found.append(f"{metric['name']}: {metric['reason']}")
        return found

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for ``--json``)."""
        return {
            "passed": self.passed,
            "ended_by": self.ended_by,
            "turns": self.turns,
            "duration_s": round(self.duration_s, 3),
            "end_call": self.end_call,
            "goal": self.goal,
            "metrics": self.metrics,
            "conversation": self.conversation,
            "error": self.error,
        }


async def run_simulation(call: VoiceCall, simulation: Simulation) -> SimulationOutcome:
    """Hold the persona's conversation on a started call, then hang up.

    Judge it with :func:`judge_simulation` once the call's figures are
    measured (``call.measure()``), so that the conversation's times are the
    ones every command reports.

    Args:
        call: A started call (connected, or failed: then nothing is said).
        simulation: The persona, its limits, its simulator and judge.

    Returns:
        The outcome so far; the call's turns (one per persona line, with
        its response time and barge-in) are in ``call.results``. It never
        raises for a failing bot or LLM: an LLM that fails is an ``error``.
    """
    from pipecat_wsclient.scenario.persona_llm import PersonaError, PersonaMind

    spec = simulation.spec
    outcome = SimulationOutcome()
    started = time.monotonic()
    deadline = started + spec.max_duration_s
    try:
        async with PersonaMind(spec.persona, spec.goal, spec.simulator) as mind:
            outcome.ended_by, outcome.end_call = await asyncio.wait_for(
                _converse(call, simulation, mind, outcome, deadline),
                timeout=spec.max_duration_s + CLOSING_REPLY_WAIT_S + 30,
            )
    except PersonaError as e:
        outcome.ended_by, outcome.error = "error", f"the persona's LLM failed: {e}"
    except TimeoutError:
        outcome.ended_by = "max_duration"
    if not call.ended:
        await call.hangup()
    outcome.duration_s = time.monotonic() - started
    return outcome


async def _converse(
    call: VoiceCall,
    simulation: Simulation,
    mind: Any,
    outcome: SimulationOutcome,
    deadline: float,
) -> tuple[str, dict[str, Any] | None]:
    """The conversation until it ends; how it ended and the persona's end_call."""
    spec = simulation.spec
    lines = outcome._lines
    if call.failure() is not None:
        return "error", None
    greeting = await call.listen(simulation.speak_first_after_s, label="greeting")
    heard: str | None = None
    if greeting.answer_start_s is not None:
        heard = await call.transcribe(greeting)
        lines.append(_Line("assistant", heard, greeting))
    while True:
        if call.ended:
            return "bot", None
        if outcome.turns >= spec.max_turns:
            return "max_turns", None
        left = deadline - time.monotonic()
        if left <= 0:
            return "max_duration", None
        reply = await mind.reply(heard, timeout=left)
        text = reply.text.strip()
        if not text:
            if reply.end_call is not None:
                return "end_call", reply.end_call
            # Nothing to say: the persona waits for the bot, as a caller would.
            answer = await call.listen(spec.max_silence_s, label="persona waits")
            if answer.answer_start_s is None:
                return ("bot" if call.ended else "silence"), None
            heard = await call.transcribe(answer)
            lines.append(_Line("assistant", heard, answer))
            continue
        outcome.turns += 1
        closing = reply.end_call is not None
        wait = min(CLOSING_REPLY_WAIT_S if closing else spec.max_silence_s, max(left, 0.1))
        heard, answered, over_end = await _say(call, simulation, mind, text, wait, outcome)
        if closing or over_end is not None:
            return "end_call", reply.end_call or over_end
        if not answered:
            return ("bot" if call.ended else "silence"), None


async def _say(
    call: VoiceCall,
    simulation: Simulation,
    mind: Any,
    text: str,
    wait: float,
    outcome: SimulationOutcome,
) -> tuple[str, bool, dict[str, Any] | None]:
    """Say the persona's line and hear the answer, talking over it if it runs long.

    Returns:
        What the persona heard, whether the bot answered at all, and the
        persona's ``end_call`` if it hung up with what it said over the bot.
    """
    lines = outcome._lines
    label = f"persona {outcome.turns}: {text}"
    if simulation.interrupt_after_s is None:
        answer = await call.say(text, timeout=wait, label=label)
        lines.append(_Line("user", text, answer))
        if answer.answer_start_s is None:
            return "", False, None
        heard = await call.transcribe(answer)
        lines.append(_Line("assistant", heard, answer))
        return heard, True, None
    answer = await call.say(text, timeout=wait, until="start", label=label)
    lines.append(_Line("user", text, answer))
    if answer.answer_start_s is None:
        return "", False, None
    if not await call.answer_outlasts(simulation.interrupt_after_s):
        await call.finish_answer()
        heard = await call.transcribe(answer)
        lines.append(_Line("assistant", heard, answer))
        return heard, True, None
    # The bot is still talking: the persona answers what it heard so far, over it.
    so_far = await _heard_so_far(call, answer)
    lines.append(_Line("assistant", so_far, answer, interrupted=True))
    reply = await mind.reply(so_far, timeout=max(wait, 5.0))
    over = reply.text.strip()
    if not over:
        await call.finish_answer()
        return await call.transcribe(answer), True, reply.end_call
    outcome.turns += 1
    elapsed_ms = (time.monotonic() - (call.t0 + answer.answer_start_s)) * 1000
    barge = await call.barge_in(
        elapsed_ms, say=over, timeout=wait, label=f"persona {outcome.turns} (over the bot): {over}"
    )
    lines.append(_Line("user", over, barge))
    logger.debug(f"persona talked over the bot after {elapsed_ms:.0f} ms")
    if barge.answer_start_s is None:
        return "", False, reply.end_call
    heard = await call.transcribe(barge)
    lines.append(_Line("assistant", heard, barge))
    return heard, True, reply.end_call


async def _heard_so_far(call: VoiceCall, answer: TurnResult) -> str:
    """What the bot has said so far in an answer still going ("" if nothing)."""
    assert answer.answer_start_s is not None
    start = call.t0 + answer.answer_start_s - 0.1
    pcm = call.line.heard_between(start, time.monotonic())
    if not pcm:
        return ""
    if call.transcriber is None:
        call.transcriber = Transcriber()
    return await call.transcriber.transcribe(pcm, call.rate)


def _timed(outcome: SimulationOutcome) -> list[dict[str, Any]]:
    """The conversation with each line's times, from the turns as measured."""
    out = []
    for line in outcome._lines:
        turn = line.turn
        if line.role == "user":
            out.append(
                {
                    "role": "caller",
                    "text": line.content,
                    "start_s": turn.speech_start_s,
                    "end_s": turn.speech_end_s,
                }
            )
            continue
        text = line.content if line.interrupted else (turn.transcript or line.content)
        if text.strip():
            out.append(
                {
                    "role": "bot",
                    "text": text,
                    "start_s": turn.answer_start_s,
                    "end_s": turn.answer_end_s,
                    "interrupted": line.interrupted,
                }
            )
    return out


async def judge_simulation(
    outcome: SimulationOutcome, simulation: Simulation, *, ask_judge: bool = True
) -> None:
    """Time the conversation, measure the metrics, and ask the judge (in place).

    Pipecat's ``EvalSimulationJudge`` decides the goal and the criterion
    metrics over the conversation (the persona as ``user``, the bot's
    transcribed speech as ``assistant``); ``turns``, ``duration``, ``words``
    and ``latency`` are measured here, from the call; a metric that needs
    the bot's internal events is reported as not observable from outside.

    Args:
        outcome: What :func:`run_simulation` returned.
        simulation: The simulation it ran.
        ask_judge: False for a call that failed: its conversation and
            measures are reported, the judge is not asked.
    """
    from pipecat.evals.conversation import EvalConversation
    from pipecat.evals.simulation_judge import EvalSimulationJudge

    outcome.conversation = _timed(outcome)
    conversation = EvalConversation()
    for line in outcome.conversation:
        if line["role"] == "caller":
            conversation.add_user_message(line["text"])
        else:
            conversation.add_assistant_message(line["text"])
    conversation.end_bot_turn()
    judged: dict[str, dict[str, Any]] = {}
    if outcome.error is None and ask_judge:
        try:
            judgement = await asyncio.wait_for(
                EvalSimulationJudge(simulation.spec).judge(conversation.messages),
                timeout=JUDGE_TIMEOUT_S,
            )
        except Exception as e:  # the judge's LLM: unreachable, slow, or broken
            outcome.error = f"the judge failed: {type(e).__name__}: {e}"
        else:
            goal = judgement.goal
            outcome.goal = {
                "verdict": goal.verdict,
                "reason": goal.reason,
                "confidence": goal.confidence,
            }
            if goal.verdict == "none":
                outcome.error = f"the judge gave no verdict on the goal: {goal.reason}"
            judged = {m.name: _judged(m) for m in judgement.metrics}
    for metric in simulation.spec.metrics:
        if metric.name in simulation.not_observable:
            outcome.metrics.append(
                {
                    "name": metric.name,
                    "kind": NOT_OBSERVABLE,
                    "score": None,
                    "passed": False,
                    "reason": f"{metric.measure}: needs the bot's internal events",
                }
            )
        elif metric.measure is not None:
            outcome.metrics.append(_measured(metric, outcome))
        elif metric.name in judged:
            outcome.metrics.append(judged[metric.name])


JUDGE_TIMEOUT_S = 300.0
"""Longest the judge may take over one conversation."""


def _judged(score: Any) -> dict[str, Any]:
    return {
        "name": score.name,
        "kind": "judged",
        "criterion": score.criterion,
        "score": score.score,
        "passed": score.passed,
        "min_score": score.min_score,
        "reason": score.reason,
        "verdicts": [
            {"turn": v.turn, "verdict": v.verdict, "reason": v.reason} for v in score.verdicts
        ],
    }


def _measured(metric: Any, outcome: SimulationOutcome) -> dict[str, Any]:
    """A measured metric against its range (``pipecat.evals`` measures, from the call)."""
    bot = [line for line in outcome.conversation if line["role"] == "bot"]
    value: float | None
    if metric.measure == "turns":
        value, said = float(outcome.turns), f"{outcome.turns} persona turn(s)"
    elif metric.measure == "duration":
        value, said = round(outcome.duration_s, 3), f"{outcome.duration_s:.1f} s"
    elif metric.measure == "words":
        longest = max((len(line["text"].split()) for line in bot), default=None)
        value = None if longest is None else float(longest)
        said = "no reply to measure" if longest is None else f"longest reply {longest} words"
    else:  # latency: the slowest response, from the end of the persona's speech
        persona = [line.turn for line in outcome._lines if line.role == "user"]
        times = [t.response_ms for t in persona if t.response_ms is not None]
        value = None if not times else round(max(times) / 1000, 3)
        said = (
            "no reply to time"
            if value is None
            else f"slowest reply {value:.2f} s from the end of the caller's speech"
        )
    low, high = metric.min_value, metric.max_value
    bound = (
        f"between {low:g} and {high:g}"
        if low is not None and high is not None
        else (f"at most {high:g}" if high is not None else f"at least {low:g}")
    )
    inside = value is None or ((low is None or value >= low) and (high is None or value <= high))
    return {
        "name": metric.name,
        "kind": "measured",
        "score": None if value is None else float(inside),
        "passed": inside,
        "value": value,
        "reason": f"{said}, {bound}",
    }


def summarize(outcomes: list[SimulationOutcome]) -> dict[str, Any]:
    """Many simulated calls in figures: pass rate, goals reached, ends, each metric's scores.

    Args:
        outcomes: The simulated calls (``load --scenario`` with a persona, Locust users).

    Returns:
        ``callers``, ``passed``, ``pass_rate``, ``goals_reached``,
        ``ended_by`` (counts), ``errors`` (count) and ``metrics``: per metric
        ``kind``, ``runs`` (scored), ``passed`` and ``mean``/``min``/``max``
        score (None when none was scored).
    """
    metrics: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        for metric in outcome.metrics:
            entry = metrics.setdefault(
                metric["name"], {"kind": metric["kind"], "scores": [], "passed": 0}
            )
            if metric["score"] is not None:
                entry["scores"].append(float(metric["score"]))
            entry["passed"] += int(bool(metric["passed"]))
    for entry in metrics.values():
        scores = entry.pop("scores")
        entry["runs"] = len(scores)
        entry["mean"] = sum(scores) / len(scores) if scores else None
        entry["min"] = min(scores, default=None)
        entry["max"] = max(scores, default=None)
    ended: dict[str, int] = {}
    for outcome in outcomes:
        ended[outcome.ended_by] = ended.get(outcome.ended_by, 0) + 1
    passed = sum(1 for o in outcomes if o.passed)
    return {
        "callers": len(outcomes),
        "passed": passed,
        "pass_rate": passed / len(outcomes) if outcomes else None,
        "goals_reached": sum(1 for o in outcomes if o.goal.get("verdict") == "yes"),
        "ended_by": ended,
        "errors": sum(1 for o in outcomes if o.error is not None),
        "metrics": metrics,
    }
