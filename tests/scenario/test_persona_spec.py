"""Simulated callers and judged expectations in scenario files: read and checked (pure).

The generated test: a persona file is a Scenario or a one-line ScenarioError,
a parsed one keeps its limits, and no factory survives without consent.
Budget (``tests/budget.py``): ``ci`` 300 examples (about 2 s, some 7% of them
parse), ``long`` 15,000 (about 75 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from budget import budget
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


FUZZ = budget(ci=300, long=15_000)

# -- generated: a simulated caller's file is a Scenario or a ScenarioError, nothing else --

_JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_METRIC = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=10) | _JUNK,
        "criterion": st.text(max_size=20) | _JUNK,
        "min_score": st.floats(-1, 2) | _JUNK,
        "measure": st.sampled_from(
            ["turns", "duration", "words", "latency", "function_calls", "x"]
        ),
        "min_value": st.floats(-10, 10) | _JUNK,
        "max_value": st.floats(-10, 10) | _JUNK,
        "calls": st.lists(st.text(max_size=8) | _JUNK, max_size=3) | _JUNK,
    },
)
_SERVICE = st.fixed_dictionaries(
    {},
    optional={
        "service": st.sampled_from(["ollama", "openai", "nope"]) | _JUNK,
        "model": st.text(max_size=10) | _JUNK,
        "endpoint": st.text(max_size=20) | _JUNK,
        "factory": st.text(max_size=20) | _JUNK,
        "explainer": _JUNK,
    },
)
_TEXT = st.text(min_size=1, max_size=20).filter(str.strip)


def _mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` three times in four, junk otherwise: enough files parse to check them."""
    return st.one_of(valid, valid, valid, _JUNK)


_PERSONA_FILE = st.fixed_dictionaries(
    {"persona": _mostly(_TEXT), "goal": _mostly(_TEXT), "success": _mostly(_TEXT)},
    optional={
        "name": _mostly(_TEXT),
        "metrics": _mostly(st.lists(_METRIC, max_size=3)),
        "max_turns": _mostly(st.integers(-5, 500)),
        "max_duration_s": _mostly(st.floats(-5, 5000)),
        "max_silence_s": _mostly(st.floats(-5, 100)),
        "simulator": _mostly(_SERVICE),
        "judge": _mostly(st.fixed_dictionaries({}, optional={"eval": _mostly(_SERVICE)})),
        "speak_first_after_s": _mostly(st.floats(-1, 1000)),
        "interrupt_after_s": _mostly(st.floats(-1, 1000)),
        "runs": _mostly(st.integers(-2, 5)),
    },
)


@FUZZ
@given(data=_PERSONA_FILE, factories=st.booleans())
def test_a_generated_persona_file_is_a_scenario_or_a_scenario_error(data, factories) -> None:
    consent = Consent(env=frozenset(), outside_files=False, factories=factories)
    try:
        scenario = parse_scenario(data, path=Path("caller.yaml"), consent=consent)
    except ScenarioError as e:
        assert "\n" not in str(e) and str(e).startswith("caller.yaml")
        event("refused")
        return
    event("parsed")
    simulation = scenario.simulation
    assert simulation is not None and scenario.turns == ()
    spec = simulation.spec
    assert 1 <= spec.max_turns <= 200 and 0 < spec.max_duration_s <= 3600
    assert 0.1 <= simulation.speak_first_after_s <= 600
    assert simulation.interrupt_after_s is None or 0.1 <= simulation.interrupt_after_s <= 600
    if not factories:  # no code named by the file runs without the user's consent
        assert not (spec.simulator or {}).get("factory")
        assert not (spec.judge or {}).get("factory")
