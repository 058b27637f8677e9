"""Scenario reports (scenario.report) and the suite exit code (scenario.run), hand-built results.

Three scenarios: one that passed with 3 turns, one with a failed turn, one
whose call could not be made (no turns).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from pipecat_wsclient.scenario.report import (
    junit_xml,
    scenario_table,
    suite_json,
    suite_summary,
    write_junit,
)
from pipecat_wsclient.scenario.results import TurnResult
from pipecat_wsclient.scenario.run import ScenarioResult, suite_exit_code


def passing() -> ScenarioResult:
    return ScenarioResult(
        name="opening hours",
        uri="ws://127.0.0.1:8765/ws",
        protocol="twilio",
        path="hours.yaml",
        connect_ms=12.5,
        duration_secs=12.3456,
        record="out/hours.wav",
        plot="out/hours.png",
        turns=[
            TurnResult(
                label="What are your hours?",
                kind="say",
                response_ms=840.0,
                answer_secs=2.5,
                transcript="From 9 to 5.",
                marks=2,
            ),
            TurnResult(
                label="barge in: Sorry",
                kind="barge_in",
                barge_in_ms=420.0,
                clear_ms=380.0,
                clears=1,
            ),
            TurnResult(label="dtmf 12#", kind="dtmf", dtmf_sent="12#", bot_hung_up=True),
        ],
    )


def failing() -> ScenarioResult:
    return ScenarioResult(
        name="booking",
        uri="ws://127.0.0.1:8765/ws",
        protocol="pipecat",
        exit_code=1,
        duration_secs=5.0,
        turns=[
            TurnResult(label="Book a table", kind="say", response_ms=900.0, transcript="Sure."),
            TurnResult(
                label="For two",
                kind="say",
                response_ms=2100.0,
                answer_secs=1.25,
                transcript="Closed today.",
                notes=["answer cut off"],
                failures=[
                    "response_ms 2100 > 1500",
                    "transcript_contains 'two': heard 'Closed today.'",
                ],
            ),
        ],
    )


def refused() -> ScenarioResult:
    return ScenarioResult(
        name="down",
        uri="ws://127.0.0.1:1/ws",
        protocol="raw",
        exit_code=3,
        error="connection refused (ws://127.0.0.1:1/ws)",
    )


def test_junit_xml_counts_failures_and_errors() -> None:
    root = ET.fromstring(ET.tostring(junit_xml([passing(), failing(), refused()]).getroot()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "1")

    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["opening hours", "booking", "down"]
    counts = [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites]
    assert counts == [("3", "0", "0"), ("2", "1", "0"), ("1", "0", "1")]
    assert [s.get("time") for s in suites] == ["12.346", "5.000", "0.000"]

    ok, booking, down = suites
    cases = ok.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "01 What are your hours?",
        "02 barge in: Sorry",
        "03 dtmf 12#",
    ]
    assert {c.get("classname") for c in cases} == {"opening hours"}
    assert [c.get("time") for c in cases] == ["2.500", "0.000", "0.000"]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    # Every measured value is in system-out, as the turn's JSON.
    measured = json.loads(cases[1].findtext("system-out") or "")
    assert measured["barge_in_ms"] == 420.0
    assert measured["clear_ms"] == 380.0
    assert measured["passed"] is True

    first, second = booking.findall("testcase")
    assert first.find("failure") is None
    failure = second.find("failure")
    assert failure is not None
    assert failure.get("message") == "response_ms 2100 > 1500"
    assert failure.text == (
        "response_ms 2100 > 1500\ntranscript_contains 'two': heard 'Closed today.'\nanswer cut off"
    )

    (call,) = down.findall("testcase")
    assert (call.get("name"), call.get("classname")) == ("call", "down")
    error = call.find("error")
    assert error is not None
    assert error.get("message") == "connection refused (ws://127.0.0.1:1/ws)"
    assert error.text == "connection refused (ws://127.0.0.1:1/ws)"


def test_junit_xml_a_call_lost_after_some_turns() -> None:
    lost = failing()
    lost.exit_code = 7
    lost.error = "connection lost"
    root = junit_xml([lost]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == ["01 Book a table", "02 For two", "call"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")


def test_junit_xml_of_nothing() -> None:
    root = junit_xml([]).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")
    assert root.findall("testsuite") == []


def test_write_junit_writes_a_file_that_parses(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "junit.xml"
    write_junit(path, [passing(), failing(), refused()])
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.parse(path).getroot()
    assert len(root.findall("testsuite/testcase")) == 6
    assert len(root.findall(".//failure")) == 1
    assert len(root.findall(".//error")) == 1


def test_suite_json_round_trips() -> None:
    data = json.loads(suite_json([passing(), failing(), refused()]))
    assert set(data) == {"passed", "summary", "scenarios"}
    assert data["passed"] is False
    assert data["summary"] == "1/3 scenarios passed, 4/5 turns passed"
    ok, booking, down = data["scenarios"]
    assert set(ok) == {
        "name",
        "path",
        "uri",
        "protocol",
        "passed",
        "exit_code",
        "error",
        "connect_ms",
        "duration_secs",
        "record",
        "plot",
        "greeting",
        "turns",
        "carrier_errors",
        "failures",
        "notes",
        "simulation",
    }
    assert (ok["name"], ok["passed"], ok["exit_code"], ok["duration_secs"]) == (
        "opening hours",
        True,
        0,
        12.346,
    )
    assert (ok["record"], ok["plot"], ok["connect_ms"]) == ("out/hours.wav", "out/hours.png", 12.5)
    assert [t["label"] for t in ok["turns"]] == [
        "What are your hours?",
        "barge in: Sorry",
        "dtmf 12#",
    ]
    turn = ok["turns"][0]
    assert {"response_ms", "answer_secs", "transcript", "failures", "notes", "passed"} <= set(turn)
    assert (turn["response_ms"], turn["transcript"], turn["passed"]) == (
        840.0,
        "From 9 to 5.",
        True,
    )
    assert booking["turns"][1]["failures"] == [
        "response_ms 2100 > 1500",
        "transcript_contains 'two': heard 'Closed today.'",
    ]
    assert booking["turns"][1]["passed"] is False
    assert (booking["passed"], booking["exit_code"]) == (False, 1)
    assert (down["error"], down["exit_code"], down["turns"]) == (
        "connection refused (ws://127.0.0.1:1/ws)",
        3,
        [],
    )


def test_suite_json_all_passed() -> None:
    data = json.loads(suite_json([passing()]))
    assert data["passed"] is True
    assert data["summary"] == suite_summary([passing()]) == "1/1 scenarios passed, 3/3 turns passed"


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0], 0),
        ([0, 0, 0], 0),
        ([0, 1], 1),
        ([1, 0, 1], 1),
        ([1, 3], 3),  # a call that could not be made wins over a failed expectation
        ([3, 1], 3),
        ([0, 1, 6, 3], 6),  # the first call failure
        ([7], 7),
    ],
)
def test_suite_exit_code(codes: list[int], expected: int) -> None:
    results = [
        ScenarioResult(name=f"s{i}", uri="ws://x", protocol="raw", exit_code=c)
        for i, c in enumerate(codes)
    ]
    assert suite_exit_code(results) == expected


def test_suite_exit_code_of_the_three() -> None:
    assert suite_exit_code([passing()]) == 0
    assert suite_exit_code([passing(), failing()]) == 1
    assert suite_exit_code([passing(), failing(), refused()]) == 3


def render(result: ScenarioResult) -> str:
    console = Console(record=True, width=150)
    console.print(scenario_table(result))
    return console.export_text()


def test_scenario_table_of_a_failed_scenario() -> None:
    text = render(failing())
    assert "FAIL booking (pipecat, ws://127.0.0.1:8765/ws)" in text
    for part in (
        "Book a table",
        "For two",
        "900 ms",
        "2100 ms",
        "1.25 s",
        "response_ms 2100 > 1500",
        "answer cut off",
        "Closed today.",
        "pass",
    ):
        assert part in text, part
    assert "PASS" not in text


def test_scenario_table_of_a_passed_scenario() -> None:
    text = render(passing())
    assert "PASS opening hours (twilio, ws://127.0.0.1:8765/ws)" in text
    assert "FAIL" not in text
    for part in (
        "What are your hours?",
        "barge in: Sorry",
        "dtmf 12#",
        "840 ms",
        "420 ms",
        "(clear 380 ms)",
        "2 marks",
        "1 clear",
        "bot hung up",
        "From 9 to 5.",
        "recording out/hours.wav, timeline out/hours.png",
    ):
        assert part in text, part


def test_scenario_table_of_a_call_that_failed() -> None:
    text = render(refused())
    assert "FAIL down (raw, ws://127.0.0.1:1/ws)" in text
    assert "error: connection refused (ws://127.0.0.1:1/ws)" in text
