"""Many simulated calls in figures, as ``load`` reports them (pure)."""

from __future__ import annotations

from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE
from pipecat_wsclient.scenario.simulation import SimulationOutcome, summarize


def outcome(goal: str, polite: float | None, ended_by: str = "end_call") -> SimulationOutcome:
    return SimulationOutcome(
        ended_by=ended_by,
        turns=2,
        goal={"verdict": goal, "reason": "the bot never said /nine/" if goal == "no" else "ok"},
        metrics=[
            {
                "name": "polite",
                "kind": "judged",
                "score": polite,
                "passed": polite is None or polite >= 0.5,
                "reason": "r",
            },
            {
                "name": "calls",
                "kind": NOT_OBSERVABLE,
                "score": None,
                "passed": False,
                "reason": "x",
            },
        ],
    )


def test_summarize_counts_goals_ends_and_scores() -> None:
    figures = summarize(
        [outcome("yes", 1.0), outcome("no", 0.0), outcome("yes", None, ended_by="max_turns")]
    )
    assert figures["callers"] == 3
    assert figures["passed"] == 1  # the second failed its goal, the third ended by a limit
    assert figures["pass_rate"] == 1 / 3
    assert figures["goals_reached"] == 2
    assert figures["ended_by"] == {"end_call": 2, "max_turns": 1}
    polite = figures["metrics"]["polite"]
    assert (polite["runs"], polite["mean"], polite["min"], polite["max"]) == (2, 0.5, 0.0, 1.0)
    assert polite["passed"] == 2
    assert figures["metrics"]["calls"]["runs"] == 0
    assert summarize([])["pass_rate"] is None
