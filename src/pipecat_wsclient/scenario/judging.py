#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Judged expectations of scripted turns: ``eval: "the bot gave the opening hours"``.

One job: after a scripted call, Pipecat's ``EvalJudge`` (built from the
scenario's ``judge.eval`` config, as ``pipecat.evals`` builds it) is told
the conversation turn by turn, what we said and what the bot said (our
transcript of its speech), and decides each ``eval`` criterion on the
turn's answer, in the light of the conversation so far. A verdict other
than yes fails the turn, with the judge's reason.

Example::

    await judge_turns(pairs, scenario.judge)
    print(pairs[0][1].judged)  # [{"criterion": ..., "verdict": "yes", "reason": ...}]
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pipecat_wsclient.errors import redact_uri
from pipecat_wsclient.scenario.model import Scenario, Turn
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE
from pipecat_wsclient.scenario.results import TurnResult

JUDGE_TIMEOUT_S = 120.0
"""Longest one criterion may take to judge."""

OLLAMA_ENDPOINT = "http://localhost:11434/v1"
"""Where ``pipecat.evals`` looks for its default LLM (``service: ollama``)."""

REACH_TIMEOUT_S = 3.0


async def check_llms(scenarios: Iterable[Scenario]) -> None:
    """Check that every LLM the scenarios need accepts connections, before any call.

    The judge (``judge.eval``, for ``eval`` expectations and simulations) and
    a simulation's persona (``simulator``). A ``factory`` builds its own
    service and is not checked.

    Raises:
        ValueError: One line naming the scenario, the block and the endpoint.
    """
    seen: set[str] = set()
    for scenario in scenarios:
        for where, endpoint in llm_endpoints(scenario):
            if endpoint in seen or endpoint.startswith(("factory:", "service:")):
                continue
            problem = await _unreachable(endpoint)
            if problem is not None:
                raise ValueError(
                    f"{scenario.name}: {where}: the LLM at {redact_uri(endpoint)} is not "
                    f"reachable ({problem}); start it (for Ollama: ollama serve) or set "
                    f"{where}.endpoint"
                )
            seen.add(endpoint)


def llm_endpoints(scenario: Scenario) -> list[tuple[str, str]]:
    """The LLMs a scenario talks to: (block, endpoint).

    A factory's is ``factory:<path>``; a service named without an endpoint
    other than Ollama (Pipecat's deprecated ``openai``) is ``service:<name>``.
    """
    needs: list[tuple[str, Mapping[str, Any] | None]] = []
    if scenario.simulation is not None:
        needs.append(("simulator", scenario.simulation.spec.simulator))
        needs.append(("judge.eval", scenario.simulation.spec.judge))
    elif any(turn.expect.eval for turn in scenario.turns):
        needs.append(("judge.eval", scenario.judge))
    found = []
    for where, config in needs:
        config = config or {}
        service = str(config.get("service", "ollama")).lower()
        if config.get("factory"):
            found.append((where, f"factory:{config['factory']}"))
        elif service == "ollama" or config.get("endpoint"):
            found.append((where, str(config.get("endpoint") or OLLAMA_ENDPOINT)))
        else:  # e.g. Pipecat's deprecated "openai": its SDK's own endpoint
            found.append((where, f"service:{service}"))
    return found


async def _unreachable(endpoint: str) -> str | None:
    """Why a TCP connection to the endpoint's host fails, or None if it opens."""
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        return "not an http(s) URL"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, port), REACH_TIMEOUT_S
        )
    except (OSError, TimeoutError) as e:
        return "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
    writer.close()
    return None


async def judge_turns(
    pairs: Sequence[tuple[Turn, TurnResult]],
    judge_config: Mapping[str, Any] | None,
    greeting: TurnResult | None = None,
) -> None:
    """Decide every turn's ``eval`` criteria over the conversation so far (in place).

    Args:
        pairs: The turns as played, their answers transcribed.
        judge_config: The scenario's ``judge.eval`` (None: Pipecat's default judge).
        greeting: The bot's greeting, said before our first turn, if any.
    """
    for turn, result in pairs:
        for what in turn.expect.not_observable:
            result.notes.append(f"{NOT_OBSERVABLE}: {what}")
    if not any(turn.expect.eval for turn, _ in pairs):
        return
    from pipecat.evals.judge import EvalJudge

    # A scripted check wants a final answer: yes or no, never "continue".
    judge = EvalJudge.from_config({**(judge_config or {}), "allow_continue": False})
    try:
        if greeting is not None and greeting.transcript:
            judge.add_assistant_message(greeting.transcript)
        for turn, result in pairs:
            if turn.text:
                judge.add_user_message(turn.text)
            elif turn.kind in ("play", "dtmf"):
                judge.add_user_message(f"({turn.label})")
            if result.transcript:
                judge.add_assistant_message(result.transcript)
            for criterion in turn.expect.eval:
                await _decide(judge, criterion, result)
    finally:
        await judge.close()


async def _decide(judge: Any, criterion: str, result: TurnResult) -> None:
    if result.answer_start_s is None:
        verdict, reason = "no", "the bot did not answer"
    else:
        try:
            found = await asyncio.wait_for(judge.evaluate(criterion), JUDGE_TIMEOUT_S)
            verdict, reason = found.verdict, found.reason
        except Exception as e:  # the judge's LLM: unreachable, slow, or broken
            verdict, reason = "none", f"the judge failed: {type(e).__name__}: {e}"
    result.judged.append({"criterion": criterion, "verdict": verdict, "reason": reason})
    if verdict != "yes":
        result.failures.append(f"eval {criterion!r}: {verdict} ({reason or 'no reason given'})")
