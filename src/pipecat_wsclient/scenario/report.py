#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Scenario results for people and for CI: a table per scenario, JSON, JUnit XML.

JUnit: one ``<testsuite>`` per scenario, one ``<testcase>`` per turn (a
``<failure>`` per failed expectation, the measured values in
``<system-out>``), one per judged criterion (a turn's ``eval``; a
simulation's goal and each metric, with the judge's reason), one for the
carrier's rules when the bot broke any; a check that needs the bot's
internal events is ``<skipped>`` ("not observable from outside"); a call
that could not be made is one ``<testcase>`` with an ``<error>``. CI
systems (GitHub, GitLab, Jenkins) show it as tests.

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
from pipecat_wsclient.caller.outcome import carrier_rules_summary
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE
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
    caption = []
    if result.error:
        caption.append(Text.assemble(("error:", "red"), " ", printable(result.error)))
    caption += [_plain(note, "yellow") for note in result.notes]
    caption += [_plain(failure, "red") for failure in result.failures]
    if result.carrier_errors and not any("carrier" in f for f in result.failures):
        summary = carrier_rules_summary(result.carrier_errors)
        caption.append(_plain(f"carrier rules broken: {summary}", "yellow"))
    if result.record and not result.error:
        caption.append(_plain(f"recording {result.record}, timeline {result.plot}"))
    if caption:
        table.caption = Text("\n").join(caption)
    return table


def simulation_table(result: ScenarioResult) -> Table | None:
    """A simulated call's conversation (both sides, with times) and the judge's verdicts."""
    outcome = result.simulation
    if outcome is None:
        return None
    verdict = ("PASS", "green") if outcome.passed else ("FAIL", "red")
    title = f" {result.name}: ended by {outcome.ended_by} after {outcome.turns} turn(s)"
    table = Table(title=Text.assemble(verdict, printable(title)))
    table.add_column("at", justify="right")
    table.add_column("who")
    table.add_column("said / verdict", max_width=80)
    for line in outcome.conversation:
        at = "-" if line["start_s"] is None else f"{line['start_s']:.2f} s"
        said = line["text"] + (" [talked over]" if line.get("interrupted") else "")
        table.add_row(at, line["role"], _plain(said))
    if outcome.end_call is not None:
        claim = "achieved" if outcome.end_call.get("success") else "not achieved"
        table.add_row(
            "", "caller", _plain(f"hung up: goal {claim} ({outcome.end_call.get('reason')})")
        )
    if outcome.goal:
        style = "green" if outcome.goal.get("verdict") == "yes" else "red"
        table.add_row(
            "", "judge", _plain(f"goal {outcome.goal['verdict']}: {outcome.goal['reason']}", style)
        )
    for metric in outcome.metrics:
        score = "-" if metric["score"] is None else f"{metric['score']:.2f}"
        style = (
            "yellow"
            if metric["kind"] == NOT_OBSERVABLE
            else ("green" if metric["passed"] else "red")
        )
        table.add_row(
            "",
            "judge" if metric["kind"] == "judged" else "measure",
            _plain(f"{metric['name']} {score} ({metric['kind']}): {metric['reason']}", style),
        )
    if outcome.error:
        table.caption = Text.assemble(("error:", "red"), " ", printable(outcome.error))
    return table


def suite_summary(results: list[ScenarioResult]) -> str:
    """One line: how many scenarios and turns passed."""
    turns = [t for r in results for t in r.turns]
    passed = sum(1 for r in results if r.passed)
    line = (
        f"{passed}/{len(results)} scenarios passed, "
        f"{sum(1 for t in turns if t.passed)}/{len(turns)} turns passed"
    )
    simulated = [r.simulation for r in results if r.simulation is not None]
    if simulated:
        goals = sum(1 for o in simulated if o.goal.get("verdict") == "yes")
        line += f", {goals}/{len(simulated)} simulated callers reached their goal"
    return line


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
            for judged in turn.judged:
                cases += 1
                suite_failures += _case(
                    suite,
                    name,
                    f"{i:02d} eval: {judged['criterion']}",
                    None
                    if judged["verdict"] == "yes"
                    else f"{judged['verdict']}: {judged['reason']}",
                    json.dumps(judged, indent=1),
                )
            for note in turn.notes:
                if note.startswith(NOT_OBSERVABLE):
                    cases += 1
                    _case(suite, name, f"{i:02d} {note}", None, note, skipped=True)
        for case_name, failure, out, skipped in _call_cases(result):
            cases += 1
            suite_failures += _case(suite, name, case_name, failure, out, skipped=skipped)
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


def _case(
    suite: ET.Element,
    classname: str,
    case_name: str,
    failure: str | None,
    out: str,
    *,
    skipped: bool = False,
) -> int:
    """Add a testcase; 1 if it failed."""
    case = ET.SubElement(suite, "testcase", classname=classname, name=xml_text(case_name), time="0")
    if skipped:
        ET.SubElement(case, "skipped", message=xml_text(out))
    elif failure is not None:
        ET.SubElement(case, "failure", message=xml_text(failure)).text = xml_text(failure)
    ET.SubElement(case, "system-out").text = xml_text(out)
    return int(failure is not None and not skipped)


def _call_cases(result: ScenarioResult) -> list[tuple[str, str | None, str, bool]]:
    """The whole call's testcases: the simulation's goal and metrics, the carrier's rules."""
    cases: list[tuple[str, str | None, str, bool]] = []
    outcome = result.simulation
    if outcome is not None:
        goal = outcome.goal
        failure = (
            None
            if goal.get("verdict") == "yes"
            else f"goal not achieved: {goal.get('reason') or outcome.error or 'not judged'}"
        )
        conversation = json.dumps(rounded(outcome.as_dict()), indent=1)
        cases.append(("goal", failure, conversation, False))
        for metric in outcome.metrics:
            out = json.dumps(rounded(metric), indent=1)
            if metric["kind"] == NOT_OBSERVABLE:
                cases.append(
                    (
                        f"metric: {metric['name']}",
                        None,
                        f"{NOT_OBSERVABLE}: {metric['reason']}",
                        True,
                    )
                )
            else:
                failure = None if metric["passed"] else f"{metric['name']}: {metric['reason']}"
                cases.append((f"metric: {metric['name']}", failure, out, False))
        ended = [f for f in outcome.failures() if f.startswith("the call ended by")]
        cases.append(("end", ended[0] if ended else None, f"ended by {outcome.ended_by}", False))
    broken = [f for f in result.failures if f.startswith("carrier_errors_max")]
    if result.carrier_errors or broken:
        out = json.dumps(result.carrier_errors, indent=1)
        cases.append(("carrier rules", broken[0] if broken else None, out, False))
    return cases


def write_junit(path: Path, results: list[ScenarioResult]) -> None:
    """Write the JUnit XML report to ``path``."""
    tree = junit_xml(results)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
