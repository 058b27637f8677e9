#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Pipecat's own eval files (``pipecat.evals``), run as they are against a bot on a phone line.

A ``pipecat.evals`` file holds its scenarios under ``scenarios:`` (a key our
own scenario files never have). :func:`load_evals_file` reads it with
Pipecat's ``EvalScenarioFile.load``, so ``!include``, the file-level
defaults, the ``<file name>/<scenario name>`` names and every check mean what
they mean to ``pipecat eval``, and turns each scenario into ours. Pipecat
drives a bot from inside its pipeline (text or audio, and the bot's own
events); we call it, so what we check is what a caller hears. An expectation
on the bot's internal events is kept and reported as "not observable from
outside" (a note, and a JUnit ``<skipped>``), never passed; something a phone
line cannot do is a :class:`ScenarioError` naming the file, the scenario and
the turn. The bot's address comes from ``--uri`` and ``--protocol``.

A simulation (``persona:``) becomes our simulated caller as it is
(:class:`~pipecat_wsclient.scenario.persona_spec.Simulation`); its
``function_calls`` metrics are not observable. A scripted scenario
(``turns:``) becomes our turns:

================================================  ===============================================
Pipecat turn                                      here
================================================  ===============================================
``user: text``                                    ``say`` (eSpeak NG)
``user: text`` + ``audio: x.wav``                 ``play`` the WAV (the judge reads the text);
                                                  another format is an error (convert it)
``user:`` with ``pause_ms`` pauses                error (one turn cannot pause here)
``dtmf: "12#"``                                   ``dtmf``
no input (the bot speaks first, or goes on)       ``listen`` (10 s, or the answer's ``within_ms``);
                                                  ``wait`` when no answer may come
``send_after: {event: E, delay_ms: N}``, E one    ``barge_in`` ``after_ms: N`` (``say`` or
of bot_started_speaking, llm_started, response,   ``play``; keys cannot talk over the bot: error)
llm_response, tts_response
``send_after: {event: bot_stopped_speaking}``     the turn as usual (said once the answer ended);
                                                  a delay is a note
``send_after: {delay_ms: N}``                     the turn before waits at most N ms for an
                                                  answer when it checks none, else a note
``send_after`` on any other event                 error (nothing to time it from)
``image:``                                        error (no images on a phone line)
``context:``                                      error (the bot's LLM context cannot be set)
================================================  ===============================================

and each expectation (``expect:``, one event each) becomes part of the turn's
:class:`~pipecat_wsclient.scenario.model.Expect`:

=================================================  ============================================
Pipecat expectation                                here
=================================================  ============================================
``response``, ``llm_response``, ``tts_response``,  ``silent: false`` (the bot answers)
``bot_started_speaking``
  ... ``text_contains: s``                         ``transcript_contains: s`` (our transcript)
  ... ``text_excludes: s``                         ``transcript_not_contains: s``
  ... ``eval: criterion``                          ``eval: criterion`` (the judge)
  ... ``within_ms: N``                             ``response_ms_max: N`` (the smallest; timed
                                                   from the end of our speech) and the turn
                                                   waits that long for the answer if over 10 s
  ... ``absent: true``                             ``silent: true`` (waiting ``within_ms``);
                                                   before an expected answer
                                                   ``response_ms_min: within_ms``; after one,
                                                   not observable ("no response after the reply")
``bot_stopped_speaking``                           ``silent: false``; its ``within_ms``: not
                                                   observable
``bot_interrupted`` on a ``barge_in`` turn         the barge-in measured (every ``barge_in``);
                                                   ``within_ms: N``: ``barge_in_ms_max: N``
``bot_interrupted`` elsewhere, or ``absent``       not observable
``user_transcription`` (``text_contains``,         not observable: "the bot's transcription ..."
``eval``)
``user_started_speaking``,                         not observable
``user_stopped_speaking``, ``vad_user_*``,
``user_backchannel``, ``bot_backchannel``
``llm_started``, ``llm_marker`` (``marker``,       not observable
``marker_first``, ``markers``, ``text_after``)
``function_call``, ``function_call_stopped``       not observable: "function_call book_table
(``calls``, ``name``/``args``, ``eval``)           (party=2)"
``image``, any other event                         not observable
``check_from``                                     ignored: our checks read the whole answer
=================================================  ============================================

``user.modality``/``user.speech`` (we speak with eSpeak NG or play the WAV,
over the line), ``judge.modality``/``judge.transcription`` (we transcribe the
bot's audio with Whisper), ``stop_on_failure`` (every turn is played),
``runs`` and ``trigger_disconnect`` do not apply on a phone line; ``judge.eval``
is the judge, as in Pipecat.

Example::

    for scenario in load_evals_file(Path("evals/booking.yaml"), consent=consent):
        print(scenario.name, [turn.kind for turn in scenario.turns])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipecat_wsclient.caller.limits import MAX_MS, MAX_TURNS
from pipecat_wsclient.scenario.consent import (
    TRUSTED,
    Consent,
    ScenarioError,
    check_factories,
    check_inside,
)
from pipecat_wsclient.scenario.fields import MAX_TEXT_CHARS
from pipecat_wsclient.scenario.model import (
    MAX_DIGITS,
    Expect,
    Scenario,
    Turn,
    read_scenario_text,
)
from pipecat_wsclient.scenario.persona_spec import (
    MAX_DURATION_LIMIT,
    MAX_TURNS_LIMIT,
    UNOBSERVABLE_MEASURES,
    Simulation,
)

if TYPE_CHECKING:
    from pipecat.evals.script import EvalExpectation, EvalScriptScenario, EvalScriptTurn
    from pipecat.evals.simulation import EvalSimulationScenario

__all__ = ["included_files", "is_evals_file", "load_evals_file", "peek_yaml"]

ANSWER_EVENTS = frozenset({"response", "llm_response", "tts_response", "bot_started_speaking"})
"""Pipecat events that are the bot's answer, heard from outside."""

TALK_OVER_EVENTS = ANSWER_EVENTS | {"llm_started"}
"""``send_after`` events that mean "once the answer began": a barge-in."""

ANSWER_TIMEOUT_S = 10.0
"""Our scenarios' default wait for an answer to begin (``answer_timeout``)."""

LISTEN_S = ANSWER_TIMEOUT_S
"""How long a bot-first turn waits for the bot to speak, unless its ``within_ms`` is longer."""

MAX_INCLUDES = 100
"""Most ``!include`` a file may splice in, nested ones counted."""

MAX_INCLUDE_DEPTH = 10
"""Deepest nesting of ``!include`` (a file including itself stops here)."""

_NAMES = {"user_transcription": "the bot's transcription"}


def is_evals_file(data: Any) -> bool:
    """Whether parsed YAML is a ``pipecat.evals`` file: a mapping with ``scenarios:``.

    Our own scenario files never have that key; Pipecat's loader says what
    is wrong with one whose ``scenarios:`` is not a list of scenarios.
    """
    return isinstance(data, dict) and "scenarios" in data


def peek_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML as a safe loader does, reading ``!include <path>`` as nothing.

    Returns:
        The document (each ``!include`` as None) and the paths included, as
        written, in order. No included file is opened.

    Raises:
        yaml.YAMLError: And what PyYAML lets slip (see ``load_scenario``).
    """
    written: list[str] = []

    class _Peek(yaml.SafeLoader):
        pass

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> None:
        scalar = isinstance(node, yaml.ScalarNode)
        written.append(str(loader.construct_scalar(node)) if scalar else "(not a path)")

    _Peek.add_constructor("!include", include)
    return yaml.load(text, _Peek), written


def included_files(files: Iterable[Path]) -> set[Path]:
    """The files among ``files`` that a ``pipecat.evals`` file among them ``!include``s.

    Such a file is a fragment (a shared ``judge:`` or ``user:`` block), not a
    scenario: ``test`` skips it in a folder. A file that cannot be read is
    left to the loader to report.
    """
    files = list(files)
    candidates = {path.resolve(): path for path in files}
    found: set[Path] = set()
    for path in files:
        written = _includes_of(path)
        if written is None:
            continue
        # Nested includes resolve against the including file's folder, as in Pipecat.
        stack = [path.parent / w for w in written]
        seen: set[Path] = set()
        while stack and len(seen) < MAX_INCLUDES:
            target = stack.pop().resolve()
            if target in seen or not target.is_file():
                continue
            seen.add(target)
            stack += [path.parent / w for w in _includes_of(target, evals_only=False) or []]
        found |= seen & candidates.keys()
    return {candidates[target] for target in found}


def _includes_of(path: Path, *, evals_only: bool = True) -> list[str] | None:
    try:
        data, written = peek_yaml(read_scenario_text(path))
    except Exception:  # reported when the file is loaded
        return None
    return written if is_evals_file(data) or not evals_only else None


def load_evals_file(path: Path, *, consent: Consent = TRUSTED) -> list[Scenario]:
    """Read a ``pipecat.evals`` file with Pipecat's loader, as our scenarios.

    Args:
        path: The file (a mapping with ``scenarios:``).
        consent: Whether it may include and play files outside its folder.

    Returns:
        Its scenarios, in file order, named ``<file name>/<scenario name>``,
        with no ``uri`` (``--uri`` gives it).

    Raises:
        ScenarioError: One line naming the file (and the scenario and the
            turn): Pipecat's own errors, a file it includes or plays that
            ``consent`` does not allow, or what a phone line cannot do.
    """
    _check_includes(path, consent)
    from pipecat.evals.scenario import EvalScenarioFile, EvalSimulationScenario

    try:
        with warnings.catch_warnings():  # its deprecations are for the file's author
            warnings.simplefilter("ignore")
            loaded = EvalScenarioFile.load(path)
    except Exception as e:  # ValueError, OSError, YAMLError, and what PyYAML lets slip
        raise ScenarioError(_one_line(e, path)) from None
    for spec in loaded.scenarios:
        blocks: dict[str, Any] = {"judge.eval": getattr(spec, "judge", None)}
        if isinstance(spec, EvalSimulationScenario):
            blocks["simulator"] = spec.simulator
        check_factories(blocks, f"{path}: {spec.name}", consent)
    return [
        _simulated(spec, path)
        if isinstance(spec, EvalSimulationScenario)
        else _scripted(spec, path, consent)
        for spec in loaded.scenarios
    ]


def _one_line(error: Exception, path: Path) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, yaml.YAMLError):
        text = f"not valid YAML: {text}"
    elif isinstance(error, OSError):
        text = f"{error.filename or path}: {error.strerror or text}"
    return text if text.startswith(str(path)) else f"{path}: {text}"


def _check_includes(path: Path, consent: Consent) -> None:
    """Read the file and every file it includes, each as ``consent`` allows, before Pipecat does."""
    base, where = path.parent, str(path)
    depth = [0, 0]  # nesting now, includes so far

    class _Checked(yaml.SafeLoader):
        pass

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise ScenarioError(f"{where}: !include takes a file path")
        written = str(loader.construct_scalar(node))
        target = base / written
        check_inside(target, base, written, f"{where}: !include", consent)
        depth[1] += 1
        if depth[1] > MAX_INCLUDES or depth[0] >= MAX_INCLUDE_DEPTH:
            raise ScenarioError(
                f"{where}: !include {written}: more than {MAX_INCLUDES} includes or "
                f"{MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
            )
        if not target.is_file():
            raise ScenarioError(f"{where}: !include {written}: no such file: {target}")
        depth[0] += 1
        try:
            return yaml.load(read_scenario_text(target), _Checked)
        finally:
            depth[0] -= 1

    _Checked.add_constructor("!include", include)
    try:
        yaml.load(read_scenario_text(path), _Checked)
    except ScenarioError:
        raise
    except Exception:  # the file's own mistakes: Pipecat's loader reports them
        return


def _simulated(spec: EvalSimulationScenario, path: Path) -> Scenario:
    where = f"{path}: {spec.name}"
    if spec.max_turns > MAX_TURNS_LIMIT:
        raise ScenarioError(f"{where}: max_turns must be at most {MAX_TURNS_LIMIT}")
    if spec.max_duration_s > MAX_DURATION_LIMIT:
        raise ScenarioError(f"{where}: max_duration_s must be at most {MAX_DURATION_LIMIT:g}")
    hidden = tuple(m.name for m in spec.metrics if m.measure in UNOBSERVABLE_MEASURES)
    return Scenario(
        name=spec.name,
        turns=(),
        path=path,
        judge=dict(spec.judge),
        simulation=Simulation(spec=spec, not_observable=hidden),
    )


def _scripted(spec: EvalScriptScenario, path: Path, consent: Consent) -> Scenario:
    where = f"{path}: {spec.name}"
    if spec.context:
        raise ScenarioError(
            f"{where}: context: the bot's LLM context cannot be set over a phone line "
            "(Pipecat's eval transport sends it); test the bot with its own context"
        )
    if not spec.turns:
        raise ScenarioError(f"{where}: 'turns:' is empty")
    if len(spec.turns) > MAX_TURNS:
        raise ScenarioError(f"{where}: more than {MAX_TURNS} turns")
    turns: list[Turn] = []
    notes: list[str] = []
    for i, source in enumerate(spec.turns, start=1):
        here = f"{where}: turn {i}"
        action = _action(source, turns[-1] if turns else None, here, path.parent, consent)
        expect, wait_s = _expect(source.expect, action["kind"], here)
        if action["kind"] == "listen" and expect.silent:
            action["kind"] = "wait"  # no answer may come: a wait checks that
        if action["kind"] == "wait":
            turns.append(Turn(seconds=wait_s or LISTEN_S, expect=expect, **action))
        elif action["kind"] == "listen":
            turns.append(Turn(seconds=max(LISTEN_S, wait_s or 0.0), expect=expect, **action))
        else:
            turns.append(Turn(expect=expect, answer_timeout=wait_s, **action))
        note = _paced(source, turns, here)
        if note is not None:
            notes.append(note)
    return Scenario(
        name=spec.name,
        turns=tuple(turns),
        path=path,
        judge=dict(spec.judge),
        notes=tuple(notes),
    )


def _action(
    turn: EvalScriptTurn, before: Turn | None, where: str, base: Path, consent: Consent
) -> dict[str, Any]:
    """What the turn sends, as our turn's kind and its argument."""
    if turn.image is not None:
        raise ScenarioError(
            f"{where}: image: a phone line cannot serve the bot the images it asks for"
        )
    if turn.parts is not None:
        raise ScenarioError(
            f"{where}: user: a turn with pauses (pause_ms) cannot be spoken here; write it "
            "without them, or give a WAV recording of it as 'audio:'"
        )
    action: dict[str, Any]
    if turn.dtmf is not None:
        if len(turn.dtmf) > MAX_DIGITS:
            raise ScenarioError(f"{where}: dtmf: more than {MAX_DIGITS} keys")
        action = {"kind": "dtmf", "digits": turn.dtmf}
    elif turn.audio is not None:
        audio = _recording(turn.audio, base, where, consent)
        action = {"kind": "play", "audio": audio, "text": _text(turn.user, where)}
    elif turn.user is not None:
        action = {"kind": "say", "text": _text(turn.user, where)}
    else:
        return {"kind": "listen"}
    event = None if turn.send_after is None else turn.send_after.event
    if event is None or event == "bot_stopped_speaking":
        return action
    if event not in TALK_OVER_EVENTS:
        raise ScenarioError(
            f"{where}: send_after {event}: the bot's {event} is not observable from outside, "
            "so nothing can be timed from it over a phone line"
        )
    if action["kind"] == "dtmf":
        raise ScenarioError(
            f"{where}: send_after {event}: keys cannot talk over the bot here "
            "(a barge-in says or plays)"
        )
    if before is None or before.kind not in ("say", "play", "dtmf", "listen"):
        raise ScenarioError(
            f"{where}: send_after {event}: talks over the answer to the turn before it, which "
            "must send words, a recording or keys, or let the bot speak first"
        )
    assert turn.send_after is not None
    return {**action, "kind": "barge_in", "after_ms": float(turn.send_after.delay_ms)}


def _paced(turn: EvalScriptTurn, turns: list[Turn], where: str) -> str | None:
    """Honor a ``send_after`` that only paces the turn, or say why it cannot be (a note)."""
    sent_after = turn.send_after
    if sent_after is None or sent_after.event not in (None, "bot_stopped_speaking"):
        return None
    if sent_after.event == "bot_stopped_speaking":
        if not sent_after.delay_ms:
            return None
        return (
            f"{where}: send_after bot_stopped_speaking + {sent_after.delay_ms} ms: said once "
            "the bot's answer ended (800 ms of silence, answer_silence_ms)"
        )
    before = turns[-2] if len(turns) > 1 else None
    checks_nothing = before is not None and replace(before.expect, not_observable=()) == Expect()
    if before is not None and checks_nothing and before.kind in ("say", "play", "dtmf"):
        # Pipecat sends delay_ms after the turn before; it expects no answer, so
        # that turn waits no longer than this for one.
        turns[-2] = replace(before, answer_timeout=max(0.1, sent_after.delay_ms / 1000))
        return None
    return f"{where}: send_after delay_ms {sent_after.delay_ms}: said once " + (
        "the call is up" if before is None else "the answer to the turn before ended"
    )


def _text(user: str | None, where: str) -> str:
    if not user or not user.strip():
        raise ScenarioError(f"{where}: user: the text to say must be a non-empty string")
    if len(user) > MAX_TEXT_CHARS:
        raise ScenarioError(f"{where}: user: longer than {MAX_TEXT_CHARS} characters")
    return user


def _recording(audio: str, base: Path, where: str, consent: Consent) -> Path:
    """A turn's ``audio:`` (Pipecat has made it absolute): a WAV file we may play."""
    path = Path(audio)
    check_inside(path, base, audio, f"{where}: audio", consent)
    if path.suffix.lower() not in (".wav", ".wave"):
        raise ScenarioError(
            f"{where}: audio: {path.name}: only WAV files are played here; convert it "
            f"(ffmpeg -i {path.name} {path.stem}.wav)"
        )
    if not path.is_file():
        raise ScenarioError(f"{where}: audio: no such file: {path}")
    return path


def _expect(
    expectations: list[EvalExpectation], kind: str, where: str
) -> tuple[Expect, float | None]:
    """A turn's expectations as ours, and how long to wait for its answer (None: the default)."""
    for i, e in enumerate(expectations, start=1):
        ms = e.within_ms
        number = isinstance(ms, (int, float)) and not isinstance(ms, bool)
        if ms is not None and not (number and 0 <= ms <= MAX_MS):
            raise ScenarioError(
                f"{where}: expectation {i}: within_ms must be milliseconds, not {ms!r}"
            )
    contains: list[str] = []
    excludes: list[str] = []
    criteria: list[str] = []
    hidden: list[str] = []
    budgets: list[float] = []  # within_ms of the answer's events
    quiet: list[EvalExpectation] = []  # no answer, before any is expected
    barge_in_ms: list[float] = []
    answered = False
    for e in expectations:
        if e.event in ANSWER_EVENTS and e.absent:
            if answered:
                hidden.append(_describe(e, "after the reply"))
            else:
                quiet.append(e)
        elif e.event in ANSWER_EVENTS:
            answered = True
            contains += [str(e.text_contains)] if e.text_contains else []
            excludes += [str(e.text_excludes)] if e.text_excludes else []
            criteria += [str(e.eval)] if e.eval else []
            budgets += [] if e.within_ms is None else [float(e.within_ms)]
        elif e.event == "bot_stopped_speaking" and not e.absent:
            answered = True
            if e.within_ms is not None:
                hidden.append(f"bot_stopped_speaking within {e.within_ms} ms of the send")
        elif e.event == "bot_interrupted" and kind == "barge_in" and not e.absent:
            barge_in_ms += [] if e.within_ms is None else [float(e.within_ms)]
        else:
            hidden.append(_describe(e))
    silent = False if answered else (True if quiet else None)
    windows = [float(q.within_ms) for q in quiet if q.within_ms is not None]
    response_ms_min = None
    if silent:
        wait_s = max(0.1, max(windows) / 1000) if windows else None  # the quiet window
    else:
        wait_s = min(budgets) / 1000 if budgets else None
        if quiet:  # quiet for a while, then the answer
            hidden += [_describe(q, "before the reply") for q in quiet if q.within_ms is None]
            if windows:
                response_ms_min = max(windows)
                wait_s = max(wait_s or 0.0, response_ms_min / 1000 + ANSWER_TIMEOUT_S)
        if wait_s is not None and wait_s <= ANSWER_TIMEOUT_S:
            wait_s = None  # the default wait is long enough to measure the answer
    expect = Expect(
        response_ms_max=min(budgets) if budgets else None,
        response_ms_min=response_ms_min,
        transcript_contains=tuple(contains),
        transcript_not_contains=tuple(excludes),
        barge_in_ms_max=min(barge_in_ms) if barge_in_ms else None,
        silent=silent,
        eval=tuple(criteria),
        not_observable=tuple(hidden),
    )
    return expect, wait_s


def _describe(e: EvalExpectation, when: str = "") -> str:
    """A short description of an expectation we cannot check: "function_call book_table"."""
    parts = [_NAMES.get(e.event, e.event)]
    if e.calls:
        parts.append(", ".join(call.signature for call in e.calls))
    if e.text_contains is not None:
        parts.append(f"contains {e.text_contains!r}")
    if e.text_excludes is not None:
        parts.append(f"without {e.text_excludes!r}")
    if e.marker is not None:
        parts.append(e.marker)
    for key in ("marker_first", "markers", "text_after"):
        value = getattr(e, key)
        if value is not None:
            parts.append(f"{key} {str(value).lower()}")
    if e.eval:
        parts.append(f"judged {e.eval!r}")
    if when:
        parts.append(when)
    text = " ".join(parts)
    return f"no {text}" if e.absent else text
