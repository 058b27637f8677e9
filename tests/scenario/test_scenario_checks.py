"""Whether a turn did what it expected (scenario.checks.check_turn), on hand-built results.

Each expectation passes, and fails with one line naming what was measured
(``response_ms`` for ``response_ms_max``, the key itself for the transcript,
``silent`` and ``bot_hangs_up``) and the measured value.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipecat_wsclient.scenario.checks import check_turn
from pipecat_wsclient.scenario.model import Expect
from pipecat_wsclient.scenario.results import TurnResult


def result(kind: str = "say", **measured: Any) -> TurnResult:
    return TurnResult(label="a turn", kind=kind, **measured)


ANSWERED = {"response_ms": 700.0, "answer_start_s": 2.0, "answer_end_s": 4.0, "answer_secs": 2.0}

# (expectation, what was measured, the failure line or None for a pass)
CASES: dict[str, tuple[dict, dict, str | None]] = {
    "response_ms_max pass": ({"response_ms_max": 1500}, {"response_ms": 1200.0}, None),
    "response_ms_max at the limit": ({"response_ms_max": 1500}, {"response_ms": 1500.0}, None),
    "response_ms_max fail": (
        {"response_ms_max": 1500},
        {"response_ms": 1830.4},
        "response_ms 1830 > 1500",
    ),
    "response_ms_max not measured": (
        {"response_ms_max": 1500},
        {},
        "response_ms: not measured (no answer)",
    ),
    "response_ms_max not measured, with notes": (
        {"response_ms_max": 1500},
        {"notes": ["the call ended", "no audio"]},
        "response_ms: not measured (the call ended; no audio)",
    ),
    "response_ms_min pass": ({"response_ms_min": 100}, {"response_ms": 300.0}, None),
    "response_ms_min fail": (
        {"response_ms_min": 100},
        {"response_ms": 50.0},
        "response_ms 50 < 100",
    ),
    "transcript_contains pass": (
        {"transcript_contains": ("nine", "five")},
        {"transcript": "We are open from 9 to 5."},
        None,
    ),
    "transcript_contains fail": (
        {"transcript_contains": ("nine", "six")},
        {"transcript": "We are open from 9 to 5."},
        "transcript_contains 'six': heard 'We are open from 9 to 5.'",
    ),
    "transcript_contains digits in the phrase": (
        {"transcript_contains": ("9",)},
        {"transcript": "From nine in the morning."},
        None,
    ),
    "transcript_contains a whole number only": (
        {"transcript_contains": ("nine",)},
        {"transcript": "Ninety"},
        "transcript_contains 'nine': heard 'Ninety'",
    ),
    "transcript_contains five is not in 105": (
        {"transcript_contains": ("five",)},
        {"transcript": "Room 105."},
        "transcript_contains 'five': heard 'Room 105.'",
    ),
    "transcript_not_contains pass": (
        {"transcript_not_contains": ("closed",)},
        {"transcript": "We are open."},
        None,
    ),
    "transcript_not_contains fail with numerals": (
        {"transcript_not_contains": ("nine",)},
        {"transcript": "Open at 9."},
        "transcript_not_contains 'nine': heard 'Open at 9.'",
    ),
    "transcript_matches pass raw": (
        {"transcript_matches": r"\d{4}"},
        {"transcript": "Your code is 4711."},
        None,
    ),
    "transcript_matches pass normalized": (
        {"transcript_matches": "nine (am|in the morning)"},
        {"transcript": "From 9 a.m. on."},
        None,
    ),
    "transcript_matches fail": (
        {"transcript_matches": "(?i)cancel"},
        {"transcript": "Goodbye."},
        "transcript_matches '(?i)cancel': heard 'Goodbye.'",
    ),
    "transcript empty": (
        {"transcript_contains": ("hello",)},
        {"transcript": ""},
        "transcript_contains 'hello': heard nothing (empty transcript)",
    ),
    "transcript None": (
        {"transcript_contains": ("hello",)},
        {"transcript": None},
        "transcript: not transcribed",
    ),
    "clear_ms_max pass": ({"clear_ms_max": 300}, {"clear_ms": 200.0}, None),
    "clear_ms_max fail": ({"clear_ms_max": 300}, {"clear_ms": 412.0}, "clear_ms 412 > 300"),
    "clear_ms_max no clear": ({"clear_ms_max": 300}, {}, "clear_ms: the bot sent no clear"),
    "silent true pass": ({"silent": True}, {}, None),
    "silent true fail": ({"silent": True}, ANSWERED, "silent: the bot spoke after 700 ms"),
    "silent false pass": ({"silent": False}, ANSWERED, None),
    "silent false fail": (
        {"silent": False},
        {},
        "silent: false, but the bot said nothing (no answer)",
    ),
    "bot_hangs_up true pass": ({"bot_hangs_up": True}, {"bot_hung_up": True}, None),
    "bot_hangs_up true fail": (
        {"bot_hangs_up": True},
        {},
        "bot_hangs_up: the bot did not end the call",
    ),
    "bot_hangs_up false pass": ({"bot_hangs_up": False}, {}, None),
    "bot_hangs_up false fail": (
        {"bot_hangs_up": False},
        {"bot_hung_up": True},
        "bot_hangs_up: false, but the bot ended the call",
    ),
    "max_underruns pass": ({"max_underruns": 2}, {"underruns": 2}, None),
    "max_underruns fail": ({"max_underruns": 2}, {"underruns": 3}, "underruns 3 > 2"),
    "answer_secs_max pass": ({"answer_secs_max": 5}, {"answer_secs": 4.99}, None),
    "answer_secs_max fail": ({"answer_secs_max": 5}, {"answer_secs": 6.2}, "answer_secs 6.20 > 5"),
    "answer_secs_max no answer": ({"answer_secs_max": 5}, {}, None),
}


@pytest.mark.parametrize(("expect", "measured", "failure"), list(CASES.values()), ids=list(CASES))
def test_each_expectation(expect: dict, measured: dict, failure: str | None) -> None:
    failures = check_turn(Expect(**expect), result(**measured))
    assert failures == ([] if failure is None else [failure])


@pytest.mark.parametrize(
    ("key", "measured"),
    [
        ("response_ms_max", {"response_ms": 9000.0}),
        ("response_ms_min", {"response_ms": 1.0}),
        ("barge_in_ms_max", {"barge_in_ms": 9000.0}),
        ("clear_ms_max", {"clear_ms": 9000.0}),
        ("max_underruns", {"underruns": 9}),
        ("answer_secs_max", {"answer_secs": 9.0}),
    ],
)
def test_a_limit_line_names_the_measurement_and_the_value(key: str, measured: dict) -> None:
    limit = 5 if key == "response_ms_min" else 2
    kind = "barge_in" if key == "barge_in_ms_max" else "say"
    failures = check_turn(Expect(**{key: limit}), result(kind, **measured))
    ((name, value),) = measured.items()
    assert len(failures) == 1
    shown, value_shown, sign, limit_shown = failures[0].split()
    assert (shown, float(value_shown), limit_shown) == (name, value, str(limit))
    assert sign == ("<" if key.endswith("_min") else ">")


def test_barge_in_pass_and_fail() -> None:
    expect = Expect(barge_in_ms_max=800)
    assert check_turn(expect, result("barge_in", barge_in_ms=520.0)) == []
    assert check_turn(expect, result("barge_in", barge_in_ms=950.4)) == ["barge_in_ms 950 > 800"]


def test_a_barge_in_turn_without_a_barge_in_fails_even_with_no_expectation() -> None:
    assert check_turn(Expect(), result("barge_in")) == ["barge_in_ms: not measured (no barge-in)"]
    assert check_turn(Expect(), result("barge_in", notes=["the answer had ended"])) == [
        "barge_in_ms: not measured (the answer had ended)"
    ]
    assert check_turn(Expect(barge_in_ms_max=800), result("barge_in")) == [
        "barge_in_ms: not measured (no barge-in)"
    ]
    assert check_turn(Expect(), result("barge_in", barge_in_ms=300.0)) == []


def test_kind_overrides_the_results_kind() -> None:
    assert check_turn(Expect(), result("say")) == []
    assert check_turn(Expect(), result("say"), kind="barge_in") == [
        "barge_in_ms: not measured (no barge-in)"
    ]


def test_no_expectation_no_failure() -> None:
    for measured in ({}, ANSWERED, {"bot_hung_up": True, "underruns": 40, "transcript": None}):
        assert check_turn(Expect(), result(**measured)) == []


def test_every_failure_in_the_order_of_expects_fields() -> None:
    expect = Expect(
        response_ms_max=500,
        transcript_contains=("nine",),
        clear_ms_max=100,
        silent=True,
        bot_hangs_up=True,
        max_underruns=0,
        answer_secs_max=1,
    )
    measured = result(
        **ANSWERED, transcript="Closed today.", clear_ms=150.0, underruns=1, barge_in_ms=10.0
    )
    failures = check_turn(expect, measured, kind="barge_in")
    assert failures == [
        "response_ms 700 > 500",
        "transcript_contains 'nine': heard 'Closed today.'",
        "clear_ms 150 > 100",
        "silent: the bot spoke after 700 ms",
        "bot_hangs_up: the bot did not end the call",
        "underruns 1 > 0",
        "answer_secs 2.00 > 1",
    ]
    # The result is not changed: the caller stores the failures.
    assert measured.failures == [] and measured.passed
