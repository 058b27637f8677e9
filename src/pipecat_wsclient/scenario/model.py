#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Scenario files: what a test call does and expects, read from YAML and checked (pure).

A scenario is one call: a name, where to call and how, and a list of turns.
Every turn does one thing (``say``, ``play``, ``barge_in``, ``dtmf``,
``wait``, ``listen`` or ``hangup``) and may carry an ``expect`` mapping.
``${VAR}`` (or ``${VAR:-default}``) anywhere in a string is replaced from the
environment, and ``play`` names a WAV file, as far as the user's
:class:`~pipecat_wsclient.scenario.consent.Consent` allows. Every rate,
duration and size has a range (:mod:`pipecat_wsclient.caller.limits`); every
header is checked. Every mistake is a :class:`ScenarioError` naming the
file, the turn and the key.

Example::

    scenario = load_scenario(Path("opening-hours.yaml"))
    for turn in scenario.turns:
        print(turn.kind, turn.expect)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.caller.hygiene import check_header
from pipecat_wsclient.caller.limits import MAX_MS, MAX_SECS, MAX_TURNS, RATE_MAX, RATE_MIN
from pipecat_wsclient.scenario import fields as check
from pipecat_wsclient.scenario.consent import (
    TRUSTED,
    Consent,
    ScenarioError,
    check_factories,
    expand_env,
)
from pipecat_wsclient.scenario.matching import check_pattern
from pipecat_wsclient.scenario.persona_spec import (
    PHONE_KEYS,
    SIMULATION_KEYS,
    Simulation,
    judge_eval_config,
    parse_simulation,
)

__all__ = [
    "ACTIONS",
    "Consent",
    "Expect",
    "Scenario",
    "ScenarioError",
    "Turn",
    "expand_env",
    "find_scenarios",
    "load_scenario",
    "load_scenarios",
    "parse_scenario",
    "read_scenario_text",
]

ACTIONS = ("say", "play", "barge_in", "dtmf", "wait", "listen", "hangup")
"""The turn kinds: each turn has exactly one of these keys."""

DTMF_DIGITS = set("0123456789*#ABCD")

MAX_FILE_BYTES = 1 << 20
"""Largest scenario file read (1 MiB)."""


MAX_DIGITS = 100
"""Most keys a ``dtmf`` turn presses."""


@dataclass(frozen=True)
class Expect:
    """What a turn expects; None (or empty) checks nothing.

    Parameters:
        response_ms_max: Most milliseconds from the end of our speech (or the
            last DTMF key, or the start of a ``listen``) to the answer's first audio.
        response_ms_min: Fewest such milliseconds (a bot that talks too soon).
        transcript_contains: Phrases the answer's transcript must contain
            (case, punctuation and numerals forgiven: "nine" matches "9").
        transcript_not_contains: Phrases it must not contain.
        transcript_matches: A regular expression the transcript must match.
        barge_in_ms_max: Most milliseconds from our speech onset (talking over
            the bot) to the bot's audio stopping.
        clear_ms_max: Most milliseconds from our speech onset to the bot's
            ``clear`` (carriers only).
        silent: True: the bot says nothing in this turn; False: it must answer.
        bot_hangs_up: True: the bot ends the call after this turn.
        max_underruns: Most playback gaps (20-250 ms) inside the answer.
        answer_secs_max: Longest answer, in seconds.
        eval: Criteria an LLM judge decides over the conversation so far,
            the answer being the bot's latest reply (``eval: "the bot gave
            the opening hours"``); needs the scenario's ``judge``.
        not_observable: Checks that need the bot's internal events (a
            ``pipecat.evals`` file's function calls, its own transcription):
            reported as not observable from outside, never passed.
    """

    response_ms_max: float | None = None
    response_ms_min: float | None = None
    transcript_contains: tuple[str, ...] = ()
    transcript_not_contains: tuple[str, ...] = ()
    transcript_matches: str | None = None
    barge_in_ms_max: float | None = None
    clear_ms_max: float | None = None
    silent: bool | None = None
    bot_hangs_up: bool | None = None
    max_underruns: int | None = None
    answer_secs_max: float | None = None
    eval: tuple[str, ...] = ()
    not_observable: tuple[str, ...] = ()

    @property
    def needs_transcript(self) -> bool:
        """Whether checking needs what the bot said."""
        return bool(
            self.transcript_contains
            or self.transcript_not_contains
            or self.transcript_matches
            or self.eval
        )


@dataclass(frozen=True)
class Turn:
    """One step of a call.

    Parameters:
        kind: One of :data:`ACTIONS`.
        text: What to say (``say``, or ``barge_in`` with ``say``).
        audio: WAV file to play (``play``, or ``barge_in`` with ``play``).
        after_ms: ``barge_in``: start talking this long after the answer began.
        digits: ``dtmf``: the keys, in order.
        seconds: ``wait``: how long to stay silent; ``listen``: how long to
            wait for the bot to begin speaking.
        name: A label for reports (default: the kind and its argument).
        expect: What must hold.
        answer_timeout: Seconds allowed for the answer to begin (None: the scenario's).
    """

    kind: str
    text: str | None = None
    audio: Path | None = None
    after_ms: float = 0.0
    digits: str = ""
    seconds: float = 0.0
    name: str = ""
    expect: Expect = field(default_factory=Expect)
    answer_timeout: float | None = None

    @property
    def label(self) -> str:
        """The turn's name, or a short description of it."""
        if self.name:
            return self.name
        if self.kind in ("say", "barge_in") and self.text is not None:
            prefix = "barge in: " if self.kind == "barge_in" else ""
            return prefix + check.short(self.text)
        if self.audio is not None:
            return f"{self.kind}: {self.audio.name}"
        if self.kind == "dtmf":
            return f"dtmf {self.digits}"
        if self.kind in ("wait", "listen"):
            return f"{self.kind} {self.seconds:g} s"
        return self.kind


@dataclass(frozen=True)
class Scenario:
    """One scripted call.

    Parameters:
        name: Its name in reports.
        turns: What the caller does, in order.
        uri: The bot's WebSocket endpoint (``--uri`` overrides it).
        protocol: A ``--protocol`` of ``call`` (default ``pipecat``).
        headers: Handshake headers (``${VAR}`` for secrets).
        sample_rate: The pipeline's sample rate (None: the carrier's own rate,
            16000 for ``pipecat`` and ``raw``).
        voice: eSpeak NG voice for ``say`` (when the default TTS is used).
        answer_timeout: Seconds allowed for an answer to begin.
        answer_silence_ms: Silence that ends the bot's answer.
        stop_silence_ms: The bot's pause that means it stopped talking (a
            barge-in's stop; ``--stop-silence-ms`` overrides it).
        max_answer_secs: An answer longer than this is cut off (the turn goes on).
        open_timeout: Seconds allowed to connect.
        path: The file it was read from.
        judge: The judge's LLM (``judge.eval`` of a ``pipecat.evals`` file:
            ``service``, ``model``, ``endpoint``, or a ``factory``) for
            ``eval`` expectations and simulations (None: Pipecat's default).
        simulation: A simulated caller (a ``persona:`` scenario) instead of turns.
        carrier_errors_max: Most violations of the carrier's rules the bot may
            commit in the call (None: reported, never failed).
        notes: What a ``pipecat.evals`` file asks that a phone line does
            differently (shown before the calls).
    """

    name: str
    turns: tuple[Turn, ...]
    uri: str | None = None
    protocol: str = "pipecat"
    headers: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int | None = None
    voice: str | None = None
    answer_timeout: float = 10.0
    answer_silence_ms: float = 800.0
    stop_silence_ms: float = STOP_SILENCE_SECS * 1000
    max_answer_secs: float = 60.0
    open_timeout: float = 5.0
    path: Path | None = None
    judge: Mapping[str, Any] | None = None
    simulation: Simulation | None = None
    carrier_errors_max: int | None = None
    notes: tuple[str, ...] = ()


def load_scenario(
    path: Path, env: Mapping[str, str] | None = None, *, consent: Consent = TRUSTED
) -> Scenario:
    """Read and check a scenario file.

    Args:
        path: The YAML file.
        env: Variables for ``${VAR}`` (default: the process environment).
        consent: Which variables it may read and whether it may play files
            outside its folder (default: anything, for a file the program
            names itself; the command line passes the user's consent).

    Returns:
        The scenario; ``play`` paths are resolved against the file's folder.

    Raises:
        ScenarioError: If the file cannot be read, is larger than
            :data:`MAX_FILE_BYTES`, is not a valid scenario, or takes what
            ``consent`` does not allow.
    """
    import yaml

    text = read_scenario_text(path)
    try:
        data = yaml.safe_load(text)
    except Exception as e:
        # YAMLError, and what PyYAML lets slip: ValueError (a date such as 2026-02-30, an
        # integer of 5,000 digits), AttributeError and IndexError (a bare "!!timestamp" or
        # "!!int"), RecursionError (nesting too deep).
        raise ScenarioError(f"{path}: not valid YAML: {e}") from e
    return parse_scenario(data, path=path, env=os.environ if env is None else env, consent=consent)


def load_scenarios(
    path: Path, env: Mapping[str, str] | None = None, *, consent: Consent = TRUSTED
) -> list[Scenario]:
    """Read a scenario file of ours (one scenario) or a ``pipecat.evals`` file (its scenarios).

    Takes :func:`load_scenario`'s arguments; a ``pipecat.evals`` file (a
    ``scenarios:`` list) is read by
    :func:`~pipecat_wsclient.scenario.evals_file.load_evals_file` (no
    ``${VAR}`` in it, as in Pipecat).

    Raises:
        ScenarioError: As :func:`load_scenario`, in one line naming the file.
    """
    from pipecat_wsclient.scenario.evals_file import is_evals_file, load_evals_file, peek_yaml

    text = read_scenario_text(path)
    try:
        data, included = peek_yaml(text)
    except Exception as e:  # as load_scenario
        raise ScenarioError(f"{path}: not valid YAML: {e}") from e
    if is_evals_file(data):
        return load_evals_file(path, consent=consent)
    if included:
        raise ScenarioError(
            f"{path}: !include {included[0]}: only a pipecat.evals file (a 'scenarios:' list) "
            "includes files"
        )
    env = os.environ if env is None else env
    return [parse_scenario(data, path=path, env=env, consent=consent)]


def read_scenario_text(path: Path) -> str:
    """A scenario file's text, if it is UTF-8 and at most :data:`MAX_FILE_BYTES`.

    Raises:
        ScenarioError: Naming the file and what is wrong.
    """
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e


_SCENARIO_KEYS = {
    "name",
    "protocol",
    "uri",
    "headers",
    "turns",
    "sample_rate",
    "voice",
    "answer_timeout",
    "answer_silence_ms",
    "stop_silence_ms",
    "max_answer_secs",
    "open_timeout",
    "judge",
    "carrier_errors_max",
}
_EXPECT_TYPES: dict[str, type] = {
    "response_ms_max": float,
    "response_ms_min": float,
    "transcript_contains": tuple,
    "transcript_not_contains": tuple,
    "transcript_matches": str,
    "barge_in_ms_max": float,
    "clear_ms_max": float,
    "silent": bool,
    "bot_hangs_up": bool,
    "max_underruns": int,
    "answer_secs_max": float,
    "eval": tuple,
}


def parse_scenario(
    data: Any,
    *,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    consent: Consent = TRUSTED,
) -> Scenario:
    """Check parsed YAML (or any plain data) and build a :class:`Scenario`.

    Args:
        data: The document: a mapping with ``turns``.
        path: Where it came from (for messages and relative ``play`` paths).
        env: Variables for ``${VAR}`` (default: none set).
        consent: What it may take from this machine (see :class:`Consent`).

    Raises:
        ScenarioError: Naming the file, the turn and the key at fault.
    """
    where = str(path) if path is not None else "scenario"
    check.check_size(data, where)
    try:
        data = check.expand(data, env or {}, where, consent)
    except RecursionError:
        raise ScenarioError(f"{where}: nested too deeply (or an alias contains itself)") from None
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{where}: a scenario is a mapping with 'turns', not {check.kind(data)}"
        )
    scenario_name = str(data.get("name") or (path.stem if path is not None else "scenario"))
    simulation = None
    if "persona" in data:
        if "turns" in data:
            raise ScenarioError(
                f"{where}: a scenario is scripted ('turns') or simulated ('persona'), not both"
            )
        check.unknown(data, _SCENARIO_KEYS | SIMULATION_KEYS | PHONE_KEYS, where)
        simulation = parse_simulation(data, name=scenario_name, where=where, path=path)
        raw_turns: Any = []
    else:
        check.unknown(data, _SCENARIO_KEYS, where)
        raw_turns = data.get("turns")
        if not isinstance(raw_turns, list) or not raw_turns:
            raise ScenarioError(
                f"{where}: 'turns' must be a non-empty list (or give a 'persona' to simulate)"
            )
    if len(raw_turns) > MAX_TURNS:
        raise ScenarioError(f"{where}: more than {MAX_TURNS} turns")
    base = path.parent if path is not None else Path(".")
    turns = tuple(
        _turn(item, base, f"{where}: turn {i}", consent)
        for i, item in enumerate(raw_turns, start=1)
    )
    for i, turn in enumerate(turns):
        if turn.kind == "barge_in" and (
            i == 0 or turns[i - 1].kind not in ("say", "play", "dtmf", "listen")
        ):
            raise ScenarioError(
                f"{where}: turn {i + 1}: barge_in talks over the answer to the turn before it, "
                "which must be say, play, dtmf or listen"
            )
        if turn.kind == "hangup" and i != len(turns) - 1:
            raise ScenarioError(f"{where}: turn {i + 1}: hangup must be the last turn")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) for k in headers):
        raise ScenarioError(f"{where}: 'headers' must be a mapping of names to values")
    for name, value in headers.items():
        try:
            check_header(name, str(value), f"{where}: headers")
        except ValueError as e:
            raise ScenarioError(str(e)) from None
    uri = data.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise ScenarioError(f"{where}: 'uri' must be a string")
    protocol = data.get("protocol", "pipecat")
    from pipecat_wsclient.protocols.registry import get_protocol

    try:
        get_protocol(str(protocol))
    except ValueError as e:
        raise ScenarioError(f"{where}: protocol: {e}") from None
    voice = data.get("voice")
    judge = judge_eval_config(data.get("judge"), where)
    check_factories(
        {
            "judge.eval": judge,
            "simulator": None if simulation is None else simulation.spec.simulator,
        },
        where,
        consent,
    )
    if judge is None and simulation is not None:
        judge = dict(simulation.spec.judge)
    return Scenario(
        name=scenario_name,
        turns=turns,
        uri=uri,
        protocol=str(protocol),
        headers={str(k): str(v) for k, v in headers.items()},
        sample_rate=(
            None
            if data.get("sample_rate") is None
            else check.number(data, "sample_rate", where, int, 16000, low=RATE_MIN, high=RATE_MAX)
        ),
        voice=None if voice is None else str(voice),
        answer_timeout=check.number(data, "answer_timeout", where, float, 10.0, low=0.1),
        answer_silence_ms=check.number(
            data, "answer_silence_ms", where, float, 800.0, low=100, high=MAX_MS
        ),
        stop_silence_ms=check.number(
            data, "stop_silence_ms", where, float, STOP_SILENCE_SECS * 1000, low=20, high=MAX_MS
        ),
        max_answer_secs=check.number(data, "max_answer_secs", where, float, 60.0, low=1),
        open_timeout=check.number(data, "open_timeout", where, float, 5.0, low=0.1),
        path=path,
        judge=judge,
        simulation=simulation,
        carrier_errors_max=(
            None
            if data.get("carrier_errors_max") is None
            else check.number(data, "carrier_errors_max", where, int, 0, low=0, high=MAX_MS)
        ),
    )


def _turn(item: Any, base: Path, where: str, consent: Consent) -> Turn:
    if not isinstance(item, dict):
        raise ScenarioError(
            f"{where}: a turn is a mapping such as {{say: ...}}, not {check.kind(item)}"
        )
    actions = [k for k in ACTIONS if k in item]
    if len(actions) != 1:
        found = ", ".join(actions) or "none"
        raise ScenarioError(
            f"{where}: a turn has exactly one of {', '.join(ACTIONS)} (found: {found})"
        )
    kind = actions[0]
    check.unknown(item, {kind, "name", "expect", "answer_timeout"}, where)
    value = item[kind]
    expect = _expect(item.get("expect"), f"{where}: expect")
    common: dict[str, Any] = {
        "kind": kind,
        "name": str(item.get("name") or ""),
        "expect": expect,
        "answer_timeout": (
            None
            if item.get("answer_timeout") is None
            else check.number(item, "answer_timeout", where, float, 0.0, low=0.1)
        ),
    }
    if kind != "barge_in" and (
        expect.barge_in_ms_max is not None or expect.clear_ms_max is not None
    ):
        raise ScenarioError(
            f"{where}: expect: barge_in_ms_max and clear_ms_max belong on a barge_in turn"
        )
    if kind == "say":
        return Turn(text=check.text(value, f"{where}: say"), **common)
    if kind == "play":
        return Turn(audio=check.wav(value, base, f"{where}: play", consent), **common)
    if kind == "barge_in":
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: barge_in is a mapping: {{after_ms: 600, say: ...}}")
        check.unknown(value, {"after_ms", "say", "play"}, f"{where}: barge_in")
        if ("say" in value) == ("play" in value):
            raise ScenarioError(f"{where}: barge_in needs one of 'say' or 'play'")
        after = check.number(
            value, "after_ms", f"{where}: barge_in", float, 0.0, low=0, high=MAX_MS
        )
        if "say" in value:
            return Turn(
                text=check.text(value["say"], f"{where}: barge_in: say"), after_ms=after, **common
            )
        audio = check.wav(value["play"], base, f"{where}: barge_in: play", consent)
        return Turn(audio=audio, after_ms=after, **common)
    if kind == "dtmf":
        digits = str(value).replace(" ", "").upper()
        bad = sorted(set(digits) - DTMF_DIGITS)
        if not digits or bad or len(digits) > MAX_DIGITS:
            raise ScenarioError(
                f"{where}: dtmf takes up to {MAX_DIGITS} keys 0-9, *, #, A-D "
                f"(got {check.short(str(value))!r})"
            )
        return Turn(digits=digits, **common)
    if kind in ("wait", "listen"):
        seconds = check.number(item, kind, where, float, 0.0, low=0.0, high=MAX_SECS)
        return Turn(seconds=seconds, **common)
    if value is not True:
        raise ScenarioError(f"{where}: write 'hangup: true'")
    if expect != Expect():
        raise ScenarioError(f"{where}: hangup takes no expect (put bot_hangs_up on a turn)")
    return Turn(**common)


def _expect(value: Any, where: str) -> Expect:
    if value is None:
        return Expect()
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expect is a mapping such as {{response_ms_max: 1500}}")
    check.unknown(value, set(_EXPECT_TYPES), where)
    fields: dict[str, Any] = {}
    for key, raw in value.items():
        kind = _EXPECT_TYPES[key]
        if kind is tuple:
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                raise ScenarioError(f"{where}: {key} is a phrase or a list of phrases")
            fields[key] = tuple(items)
        elif kind is bool:
            if not isinstance(raw, bool):
                raise ScenarioError(f"{where}: {key} is true or false")
            fields[key] = raw
        elif kind is str:
            try:
                check_pattern(str(raw))
            except (ValueError, OverflowError, RecursionError) as e:  # "a{9999999999}", "((((...
                raise ScenarioError(f"{where}: {key}: {e}") from None
            fields[key] = str(raw)
        else:
            fields[key] = check.number(value, key, where, kind, 0, low=0, high=_EXPECT_MAX)
    return Expect(**fields)


_EXPECT_MAX = MAX_MS
"""Largest number an expectation names (milliseconds, seconds or counts)."""


def find_scenarios(paths: list[Path]) -> list[Path]:
    """The scenario files named: files as given, folders' ``*.yaml``/``*.yml`` sorted.

    Raises:
        ScenarioError: If a path does not exist or a folder has no scenario.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            if not files:
                raise ScenarioError(f"{path}: no .yaml scenario in this folder")
            found += files
        elif path.is_file():
            found.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or folder")
    return found
