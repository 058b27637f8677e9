"""Simulated callers and judged expectations in scenario files: read and checked (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecat_wsclient.scenario.consent import UNTRUSTED, Consent, ScenarioError
from pipecat_wsclient.scenario.model import parse_scenario
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE, SPEAK_FIRST_AFTER_S

PERSONA = {
    "name": "caller",
    "persona": "A busy parent.",
    "goal": "Learn the opening hours.",
    "success": "the bot gave the opening hours",
}


def test_a_persona_scenario_takes_pipecats_defaults_and_ours() -> None:
    scenario = parse_scenario(dict(PERSONA))
    assert scenario.turns == ()
    assert scenario.simulation is not None
    spec = scenario.simulation.spec
    assert (spec.max_turns, spec.max_duration_s, spec.max_silence_s) == (20, 300.0, 30.0)
    assert spec.judge["service"] == "ollama"  # Pipecat's default judge
    assert scenario.judge == spec.judge
    assert scenario.simulation.speak_first_after_s == SPEAK_FIRST_AFTER_S
    assert scenario.simulation.interrupt_after_s is None


def test_metrics_are_judged_measured_or_not_observable() -> None:
    data = {
        **PERSONA,
        "metrics": [
            {"name": "polite", "criterion": "the bot is polite", "min_score": 0.5},
            {"name": "turns", "measure": "turns", "max_value": 4},
            {"name": "calls", "measure": "function_calls", "calls": ["book"]},
        ],
        "interrupt_after_s": 2,
    }
    simulation = parse_scenario(data).simulation
    assert simulation is not None
    assert [m.name for m in simulation.judged_metrics] == ["polite"]
    assert [m.name for m in simulation.measured_metrics] == ["turns"]
    assert simulation.not_observable == ("calls",)
    assert simulation.interrupt_after_s == 2.0
    assert NOT_OBSERVABLE == "not observable from outside"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"turns": [{"say": "hi"}]}, "scripted ('turns') or simulated ('persona'), not both"),
        ({"goal": ""}, "'goal:'"),
        ({"interrupt_after_s": 0}, "interrupt_after_s must be a number of seconds"),
        ({"speak_first_after_s": "soon"}, "speak_first_after_s must be a number"),
        ({"max_turns": 1000}, "max_turns must be at most 200"),
        ({"metrics": [{"name": "x", "criterion": "y", "min_score": 2}]}, "min_score"),
        ({"judge": "ollama"}, "judge"),
        ({"judge": {"eval": "ollama"}}, "judge.eval"),
        ({"judge": {"model": "x"}}, "judge: unknown key 'model'"),
        ({"simulator": "x"}, "'simulator:' must be a mapping"),
        ({"tunrs": 1}, "unknown key 'tunrs'"),
    ],
)
def test_a_wrong_simulation_is_one_line_naming_the_file(extra: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario({**PERSONA, **extra}, path=Path("caller.yaml"))
    text = str(raised.value)
    assert message in text and "\n" not in text and text.startswith("caller.yaml")


def test_a_factory_runs_only_with_the_users_consent() -> None:
    data = {**PERSONA, "simulator": {"factory": "evil.module.build"}}
    with pytest.raises(ScenarioError, match=r"simulator\.factory .*--allow-factories"):
        parse_scenario(data, path=Path("caller.yaml"), consent=UNTRUSTED)
    judged = {
        "turns": [{"say": "hi", "expect": {"eval": "the bot greets"}}],
        "judge": {"eval": {"service": "ollama", "explainer": {"factory": "evil.x"}}},
    }
    with pytest.raises(ScenarioError, match=r"judge\.eval\.explainer\.factory"):
        parse_scenario(judged, consent=UNTRUSTED)
    allowed = Consent(env=frozenset(), outside_files=False, factories=True)
    assert parse_scenario(data, consent=allowed).simulation is not None


def test_eval_and_carrier_errors_max_in_a_scripted_scenario() -> None:
    scenario = parse_scenario(
        {
            "turns": [{"say": "hours?", "expect": {"eval": ["gives hours", "is polite"]}}],
            "judge": {"eval": {"service": "ollama", "endpoint": "http://127.0.0.1:1/v1"}},
            "carrier_errors_max": 0,
        }
    )
    (turn,) = scenario.turns
    assert turn.expect.eval == ("gives hours", "is polite")
    assert turn.expect.needs_transcript
    assert scenario.judge == {"service": "ollama", "endpoint": "http://127.0.0.1:1/v1"}
    assert scenario.carrier_errors_max == 0
    with pytest.raises(ScenarioError, match="carrier_errors_max must be at least 0"):
        parse_scenario({"turns": [{"say": "x"}], "carrier_errors_max": -1})


def test_the_llms_a_scenario_talks_to_are_named() -> None:
    from pipecat_wsclient.scenario.judging import OLLAMA_ENDPOINT, llm_endpoints

    default = parse_scenario(dict(PERSONA))
    assert llm_endpoints(default) == [
        ("simulator", OLLAMA_ENDPOINT),
        ("judge.eval", OLLAMA_ENDPOINT),
    ]
    other = parse_scenario(
        {
            **PERSONA,
            "simulator": {"service": "openai", "model": "gpt-4o"},
            "judge": {"eval": {"factory": "my_llms.judge"}},
        }
    )
    assert llm_endpoints(other) == [
        ("simulator", "service:openai"),
        ("judge.eval", "factory:my_llms.judge"),
    ]
