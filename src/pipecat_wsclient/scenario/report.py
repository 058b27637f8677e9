#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Scenario results for people and for CI: a table per scenario, JSON, JUnit XML.

JUnit: one ``<testsuite>`` per scenario, one ``<testcase>`` per turn (a
``<failure>`` per failed expectation, the measured values in
``<system-out>``); a call that could not be made is one ``<testcase>`` with
an ``<error>``. CI systems (GitHub, GitLab, Jenkins) show it as tests.

What the bot said or sent (transcripts, close reasons, errors) and what the
scenario file names (its name, labels, URI) reach the table as plain text,
never as rich markup, with control characters escaped
(:func:`~pipecat_wsclient.caller.hygiene.printable`); in the XML as text
XML can hold (:func:`~pipecat_wsclient.caller.hygiene.xml_text`); JSON keeps
them raw (``json.dumps`` escapes them).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.table import Table
from rich.text import Text

from pipecat_wsclient.caller.hygiene import printable, rounded, xml_text
from pipecat_wsclient.scenario.results import TurnResult
from pipecat_wsclient.scenario.run import ScenarioResult


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _barge_in(turn: TurnResult) -> str:
    if turn.barge_in_ms is None:
        return "-"
    clear = "" if turn.clear_ms is None else f"\n(clear {turn.clear_ms:.0f} ms)"
    return f"{turn.barge_in_ms:.0f} ms{clear}"


def _events(turn: TurnResult) -> str:
    parts = []
    if turn.dtmf_sent:
        parts.append(f"dtmf {turn.dtmf_sent}")
    for count, name in ((turn.marks, "mark"), (turn.clears, "clear"), (turn.underruns, "underrun")):
        if count:
            parts.append(f"{count} {name}{'s' if count > 1 else ''}")
    if turn.bot_hung_up:
        parts.append("bot hung up")
    return "\n".join(parts) or "-"


def _plain(text: object, style: str = "") -> Text:
    """Text shown as it is (no markup), control characters escaped."""
    return Text(printable(text), style=style)


def _transcript(transcript: str | None) -> Text:
    return _plain("-" if transcript is None else (transcript.strip() or "(nothing)"))


def scenario_table(result: ScenarioResult) -> Table:
    """A table with a row per turn: measured values, transcript, pass or fail."""
    verdict = ("PASS", "green") if result.passed else ("FAIL", "red")
    title = f" {result.name} ({result.protocol}, {result.uri})"
    table = Table(title=Text.assemble(verdict, printable(title)))
    table.add_column("#", justify="right")
    table.add_column("turn", max_width=28)
    table.add_column("response", justify="right")
    table.add_column("barge-in", justify="right")
    table.add_column("answer", justify="right")
    table.add_column("events")
    table.add_column("transcript", max_width=40)
    table.add_column("result", max_width=40)
    greeting = result.greeting
    if greeting is not None:
        table.add_row(
            "0",
            "greeting (the bot spoke first)",
            _ms(greeting.response_ms) + ("" if greeting.response_ms is None else "\nafter connect"),
            "-",
            "-" if greeting.answer_secs is None else f"{greeting.answer_secs:.2f} s",
            "-",
            _transcript(greeting.transcript),
            "-",
        )
    for i, turn in enumerate(result.turns, start=1):
        lines = [("pass", "green")] if turn.passed else [(f, "red") for f in turn.failures]
        lines += [(note, "yellow") for note in turn.notes]
        table.add_row(
            str(i),
            _plain(turn.label),
            _ms(turn.response_ms),
            _barge_in(turn),
            "-" if turn.answer_secs is None else f"{turn.answer_secs:.2f} s",
            _events(turn),
            _transcript(turn.transcript),
            Text("\n").join(_plain(line, style) for line, style in lines),
        )
    if result.error:
        table.caption = Text.assemble(("error:", "red"), " ", printable(result.error))
    elif result.record:
        table.caption = _plain(f"recording {result.record}, timeline {result.plot}")
    return table


def suite_summary(results: list[ScenarioResult]) -> str:
    """One line: how many scenarios and turns passed."""
    turns = [t for r in results for t in r.turns]
    passed = sum(1 for r in results if r.passed)
    return (
        f"{passed}/{len(results)} scenarios passed, "
        f"{sum(1 for t in turns if t.passed)}/{len(turns)} turns passed"
    )


def suite_json(results: list[ScenarioResult]) -> str:
    """The results as JSON (``--json``)."""
    suite = {
        "passed": all(r.passed for r in results),
        "summary": suite_summary(results),
        "scenarios": [r.as_dict() for r in results],
    }
    return json.dumps(rounded(suite), indent=2)


def junit_xml(results: list[ScenarioResult]) -> ET.ElementTree:
    """The results as a JUnit XML document."""
    root = ET.Element("testsuites", name="pipecat-wsclient test")
    total = failures = errors = 0
    for result in results:
        name = xml_text(result.name)
        error = None if result.error is None else xml_text(result.error)
        suite = ET.SubElement(root, "testsuite", name=name)
        suite_failures = suite_errors = 0
        cases = 0
        if error and not result.turns:
            case = ET.SubElement(suite, "testcase", classname=name, name="call", time="0")
            ET.SubElement(case, "error", message=error).text = error
            suite_errors += 1
            cases += 1
        for i, turn in enumerate(result.turns, start=1):
            cases += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=name,
                name=xml_text(f"{i:02d} {turn.label}"),
                time=f"{turn.answer_secs or 0:.3f}",
            )
            if turn.failures:
                suite_failures += 1
                ET.SubElement(case, "failure", message=xml_text(turn.failures[0])).text = xml_text(
                    "\n".join(turn.failures + turn.notes)
                )
            ET.SubElement(case, "system-out").text = json.dumps(turn.as_dict(), indent=1)
        if error and result.turns:
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=name, name="call", time="0")
            ET.SubElement(case, "error", message=error).text = error
            suite_errors += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(suite_failures))
        suite.set("errors", str(suite_errors))
        suite.set("time", f"{result.duration_secs:.3f}")
        total += cases
        failures += suite_failures
        errors += suite_errors
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    return ET.ElementTree(root)


def write_junit(path: Path, results: list[ScenarioResult]) -> None:
    """Write the JUnit XML report to ``path``."""
    tree = junit_xml(results)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
