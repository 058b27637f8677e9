#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Simulated callers in scenario files: the ``persona:`` fields, read and checked (pure).

A scenario with a ``persona:`` is a simulation, in the format of
``pipecat.evals`` simulations: ``persona``, ``goal``, ``success``,
``metrics`` (``criterion`` and ``min_score``, or a ``measure``),
``max_turns``, ``max_duration_s``, ``max_silence_s``, ``simulator`` (the
persona's LLM) and ``judge`` (``judge.eval``: the judge's LLM). Pipecat's
own parser reads those fields, so a simulation means here what it means to
``pipecat eval``. Two keys are ours, for a caller on a phone line:

- ``speak_first_after_s`` (default 3): the persona lets a bot that greets
  finish its greeting; a bot silent this long after connecting is spoken to
  first, as a caller would.
- ``interrupt_after_s`` (default: never): the persona talks over a bot
  answer still going after this many seconds (a barge-in), saying what it
  would say to what it has heard so far.

Measures that need the bot's internals (its function calls) cannot be
observed over the phone line: they are kept, and reported as "not
observable from outside", never passed.

Example::

    simulation = parse_simulation(
        {"persona": "A busy parent", "goal": "Learn the opening hours",
         "success": "the bot gave the opening hours"},
        name="hours",
        where="hours.yaml",
    )
    simulation.spec.max_turns  # 20, Pipecat's default
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipecat_wsclient.scenario.consent import ScenarioError

if TYPE_CHECKING:
    from pipecat.evals.simulation import EvalSimulationMetric, EvalSimulationScenario

SIMULATION_KEYS = frozenset(
    {
        "persona",
        "goal",
        "success",
        "metrics",
        "max_turns",
        "max_duration_s",
        "max_silence_s",
        "simulator",
        "judge",
        "user",
        "runs",
    }
)
"""The ``pipecat.evals`` simulation keys a scenario file may carry."""

PHONE_KEYS = frozenset({"speak_first_after_s", "interrupt_after_s"})
"""Our keys for a persona on a phone line."""

SPEAK_FIRST_AFTER_S = 3.0
"""Seconds of the bot's silence after connecting before the persona speaks first."""

NOT_OBSERVABLE = "not observable from outside"
"""How a check that needs the bot's internal events is reported."""

UNOBSERVABLE_MEASURES = frozenset({"function_calls"})
"""Measures that need the bot's internal events (its function calls)."""

MAX_TURNS_LIMIT = 200
MAX_DURATION_LIMIT = 3600.0


@dataclass(frozen=True)
class Simulation:
    """A simulated caller: Pipecat's simulation, and how it behaves on a phone line.

    Parameters:
        spec: The simulation as ``pipecat.evals`` parses it (persona, goal,
            success, metrics, limits, simulator and judge configs).
        speak_first_after_s: The bot's silence after connecting before the
            persona speaks first.
        interrupt_after_s: Talk over a bot answer longer than this (None: never).
        not_observable: The metrics that need the bot's internals, by name.
    """

    spec: EvalSimulationScenario
    speak_first_after_s: float = SPEAK_FIRST_AFTER_S
    interrupt_after_s: float | None = None
    not_observable: tuple[str, ...] = ()

    @property
    def judged_metrics(self) -> list[EvalSimulationMetric]:
        """The metrics the judge decides (a ``criterion``)."""
        return [m for m in self.spec.metrics if m.criterion]

    @property
    def measured_metrics(self) -> list[EvalSimulationMetric]:
        """The metrics measured from the call (turns, duration, words, latency)."""
        return [
            m
            for m in self.spec.metrics
            if m.measure is not None and m.measure not in UNOBSERVABLE_MEASURES
        ]


def parse_simulation(
    data: dict[str, Any], *, name: str, where: str, path: Path | None = None
) -> Simulation:
    """Read a scenario's simulation fields with Pipecat's parser, and ours.

    Args:
        data: The scenario's mapping (its other keys are ignored here).
        name: The scenario's name.
        where: The file, for messages.
        path: The file it came from, if any.

    Returns:
        The simulation.

    Raises:
        ScenarioError: Naming the file and the field at fault.
    """
    # Pipecat's own parser (private in 1.14): a simulation file means the same here.
    from pipecat.evals.simulation import _parse_simulation

    fields = {key: data[key] for key in SIMULATION_KEYS if key in data}
    fields["name"] = name
    try:
        spec = _parse_simulation(fields, Path(where) if path is None else path)
    except (ValueError, TypeError, KeyError) as e:
        raise ScenarioError(str(e) if where in str(e) else f"{where}: {e}") from None
    if spec.max_turns > MAX_TURNS_LIMIT:
        raise ScenarioError(f"{where}: max_turns must be at most {MAX_TURNS_LIMIT}")
    if spec.max_duration_s > MAX_DURATION_LIMIT:
        raise ScenarioError(f"{where}: max_duration_s must be at most {MAX_DURATION_LIMIT:g}")
    speak_first = _seconds(data, "speak_first_after_s", SPEAK_FIRST_AFTER_S, where)
    interrupt = data.get("interrupt_after_s")
    return Simulation(
        spec=spec,
        speak_first_after_s=speak_first if speak_first is not None else SPEAK_FIRST_AFTER_S,
        interrupt_after_s=None
        if interrupt is None
        else _seconds(data, "interrupt_after_s", None, where),
        not_observable=tuple(m.name for m in spec.metrics if m.measure in UNOBSERVABLE_MEASURES),
    )


def _seconds(data: dict[str, Any], key: str, default: float | None, where: str) -> float | None:
    raw = data.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.1 <= raw <= 600:
        raise ScenarioError(f"{where}: {key} must be a number of seconds from 0.1 to 600")
    return float(raw)


def judge_eval_config(judge: Any, where: str) -> dict[str, Any] | None:
    """The judge's LLM config from a scenario's ``judge:`` block (``judge.eval``).

    Args:
        judge: The ``judge:`` block as written, in ``pipecat.evals`` shape
            (``eval:`` names the LLM); None when the file has none.
        where: The file, for messages.

    Returns:
        The ``judge.eval`` mapping, or None when no block is given (Pipecat's
        default judge is then used).

    Raises:
        ScenarioError: If the block is not a mapping with an ``eval`` mapping.
    """
    if judge is None:
        return None
    if not isinstance(judge, dict):
        raise ScenarioError(f"{where}: judge is a mapping such as {{eval: {{service: ollama}}}}")
    unknown = sorted(str(k) for k in judge if k not in ("eval", "modality", "transcription"))
    if unknown:
        raise ScenarioError(f"{where}: judge: unknown key {unknown[0]!r} (expected eval)")
    config = judge.get("eval")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ScenarioError(f"{where}: judge.eval must be a mapping naming the judge's LLM")
    return dict(config)
