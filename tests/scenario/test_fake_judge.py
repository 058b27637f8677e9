"""Pipecat's simulation judge against the fake LLM (support/fake_llm.py), and the fake itself.

``EvalSimulationJudge`` builds its ``EvalJudge`` from the scenario's
``judge`` field, which is the scenario file's ``judge.eval`` block (checked
below by loading one): the real ``LLMClassifier`` and explainer then talk to
the fake over HTTP, so the verdicts, the reasons and the scores are Pipecat's,
decided by the fake's rules.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pipecat.evals.judge import EvalJudge
from pipecat.evals.scenario import EvalScenarioFile
from pipecat.evals.simulation import EvalSimulationMetric, EvalSimulationScenario
from pipecat.evals.simulation_judge import EvalSimulationJudge

from support.fake_llm import FakeLLM, LLMRules, request_kind

pytestmark = pytest.mark.timeout(30)

FAKE_LLM_SCRIPT = Path(__file__).parents[1] / "support" / "fake_llm.py"
SUCCESS = "the bot told the caller the opening hours"
RULES = LLMRules(judge_rules={"opening hours": r"\bnine\b", "polite": r"\b(please|thank)"})


def scenario(llm: FakeLLM) -> EvalSimulationScenario:
    return EvalSimulationScenario(
        name="hours",
        persona="A polite caller.",
        goal="Find out when the shop opens.",
        success=SUCCESS,
        metrics=[EvalSimulationMetric(name="polite", criterion="the bot is polite", min_score=1.0)],
        judge={"service": "ollama", "endpoint": llm.url, "model": "fake"},
    )


def conversation(answer: str) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": "Thank you for calling the Corner Shop."},
        {"role": "user", "content": "When do you open?"},
        {"role": "assistant", "content": answer},
    ]


async def test_the_goal_is_met_when_the_rule_matches():
    async with FakeLLM(RULES) as llm:
        judgement = await EvalSimulationJudge(scenario(llm)).judge(
            conversation("We open at nine, thank you for asking.")
        )

    assert judgement.goal.verdict == "yes"
    assert judgement.goal.reason == "P(yes)=0.95"  # a sure yes is not explained
    [polite] = judgement.metrics
    assert (polite.score, polite.passed, polite.reason) == (1.0, True, "all 2 turn(s)")
    assert [v.verdict for v in polite.verdicts] == ["yes", "yes"]
    # One goal question and one per bot turn, all from the classifier.
    assert sorted(request_kind(r) for r in llm.requests) == ["classifier"] * 3


async def test_the_goal_fails_with_a_reason_naming_the_missing_text():
    async with FakeLLM(RULES) as llm:
        judgement = await EvalSimulationJudge(scenario(llm)).judge(conversation("We open at ten."))

    assert judgement.goal.verdict == "no"
    assert judgement.goal.reason == r"the bot never said /\bnine\b/"
    assert judgement.goal.probabilities == {"yes": 0.05, "no": 0.95}
    [polite] = judgement.metrics
    assert (polite.score, polite.passed) == (0.5, False)
    assert polite.reason == r"turn 2: bot turn 2 never said /\b(please|thank)/"
    assert [v.verdict for v in polite.verdicts] == ["yes", "no"]
    assert polite.failure_kind == "judge_no"
    # The two no's are explained in one call, which asked for both reasons.
    [explainer] = [r for r in llm.requests if request_kind(r) == "explainer"]
    schema = explainer["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["goal", "turns"]
    assert list(schema["properties"]["turns"]["properties"]["polite"]["properties"]) == ["2"]


async def test_the_judge_block_of_a_scenario_file_is_the_judge_field(tmp_path):
    async with FakeLLM(RULES) as llm:
        path = tmp_path / "hours.yaml"
        path.write_text(
            "name: hours\n"
            "judge:\n"
            f"  eval: {{service: ollama, endpoint: '{llm.url}', model: fake}}\n"
            "scenarios:\n"
            "  - name: opening\n"
            "    persona: A polite caller.\n"
            "    goal: Find out when the shop opens.\n"
            f"    success: {SUCCESS}\n"
        )
        loaded = EvalScenarioFile.load(path)["hours/opening"]
        assert isinstance(loaded, EvalSimulationScenario)
        assert loaded.judge == {"service": "ollama", "endpoint": llm.url, "model": "fake"}
        judgement = await EvalSimulationJudge(loaded).judge(conversation("We open at ten."))
    assert (judgement.goal.verdict, judgement.goal.reason) == (
        "no",
        r"the bot never said /\bnine\b/",
    )
    assert judgement.metrics == []


async def test_a_reply_and_a_call_are_judged_and_explained():
    async with FakeLLM(RULES) as llm:
        judge = EvalJudge.from_config({"service": "ollama", "endpoint": llm.url, "model": "fake"})
        try:
            judge.add_user_message("When do you open?")
            judge.add_assistant_message("We open at ten.")
            reply = await judge.evaluate("the reply gives the opening hours")
            call = await judge.evaluate_call("book", {"time": "nine"}, "the opening hours")
            unruled = await judge.evaluate("the reply is short")
        finally:
            await judge.close()

    assert (reply.verdict, reply.reason) == ("no", r"the reply never said /\bnine\b/")
    assert (call.verdict, call.reason) == ("yes", "P(yes)=0.95")
    assert (unruled.verdict, unruled.probabilities["yes"]) == ("yes", 0.95)


def test_rules_are_json_both_ways_and_checked():
    rules = LLMRules(
        persona_lines=[
            {"say": "Hi", "when": "hello", "end_call": {"success": True, "reason": "r"}}
        ],
        judge_rules={"hours": "nine"},
        fail_next=2,
        delay_s=0.5,
    )
    assert LLMRules.from_json(rules.to_json()) == rules
    assert json.loads(LLMRules().to_json())["persona_default"]["end_call"] == {
        "success": False,
        "reason": "script exhausted",
    }
    with pytest.raises(ValueError, match="end_call"):
        LLMRules(persona_lines=[{"say": "Hi", "end_call": {"success": "yes", "reason": "r"}}])
    with pytest.raises(ValueError, match="persona line"):
        LLMRules(persona_lines=[{"text": "Hi"}])


async def test_the_script_prints_ready_and_serves(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(RULES.to_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(FAKE_LLM_SCRIPT),
        "--rules",
        str(rules),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("READY http://127.0.0.1:") and line.rstrip().endswith("/v1")
        url = line.split()[1]
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"{url}/models", timeout=5).read()
        )
        assert [m["id"] for m in json.loads(body)["data"]] == ["fake"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
