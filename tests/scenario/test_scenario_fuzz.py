"""Generated scenario files (scenario.model): a Scenario or a ScenarioError, nothing else.

Whatever a user writes, ``parse_scenario`` and ``load_scenario`` either return
a :class:`Scenario` or raise :class:`ScenarioError` naming the file: never a
``KeyError``, ``TypeError``, ``AttributeError``, ``RecursionError``... with a
bare traceback. Inputs:

- arbitrary YAML-like data (dicts, lists, strings, numbers with NaN and
  infinities, booleans, None) with keys drawn from the format's own;
- scenario-shaped data: turns of one or more actions with junk or plausible
  values and expectations;
- the issue's example with one key dropped or one value replaced by junk;
- text for ``load_scenario``: arbitrary, YAML-like token soup (anchors,
  aliases, tags, dates) and dumps of the data above; and arbitrary bytes.

A scenario that parses must also be sound: turns of known kinds, a barge_in
only after say/play/dtmf/listen, hangup only last, every number finite.

Budget (``tests/budget.py``): ``ci`` 300 examples per test, 200 for the
scenario-shaped data (1,400 in all, about 6 s here); ``long`` 50 times more,
15,000 and 10,000 (70,000, about 4 to 5 minutes; the longest test, text
files, about 70 s, under the 120 s test timeout). The defects these found
are plain regression tests at the end of ``tests/scenario/test_scenario_model.py``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st
from test_scenario_model import EXAMPLE  # the example

from budget import budget
from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.scenario.model import (
    _SCENARIO_KEYS,
    ACTIONS,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

pytestmark = pytest.mark.generated

FUZZ = budget(ci=300, long=15_000)
SHAPED_FUZZ = budget(ci=200, long=10_000)  # its examples take longer to draw

ENV = {"BOT_TOKEN": "s3cret", "EMPTY": ""}

SCENARIO_KEYS = sorted(_SCENARIO_KEYS)
TURN_KEYS = [*ACTIONS, "name", "expect", "answer_timeout", "after_ms"]
EXPECT_KEYS = [
    "response_ms_max",
    "response_ms_min",
    "transcript_contains",
    "transcript_not_contains",
    "transcript_matches",
    "barge_in_ms_max",
    "clear_ms_max",
    "silent",
    "bot_hangs_up",
    "max_underruns",
    "answer_secs_max",
]
KEYS = SCENARIO_KEYS + TURN_KEYS + EXPECT_KEYS

# Strings a scenario might hold, the tricky ones included.
NAMED_STRINGS = [
    "",
    " ",
    "cancel.wav",
    "missing.wav",
    "~no-such-user-here/cancel.wav",
    "x" * 300,
    "a\x00b",
    "${BOT_TOKEN}",
    "${NOPE}",
    "${NOPE:-cancel.wav}",
    "${EMPTY}",
    "${",
    "12#",
    "*0ABCD",
    "12x",
    "(",
    "(?i)cancel",
    "a{99999999999}",
    "(" * 2000 + ")" * 2000,
    "twilio",
    "pipecat",
    "sip",
    "ws://127.0.0.1:1/ws",
    "nine",
    "9",
]

NAMED_NUMBERS = [0, 1, -1, 0.5, 600, 1500, 8000, 16000, 10**400, -(10**400)]


def named_string(i: int) -> str:
    return NAMED_STRINGS[i]


def named_number(i: int) -> float:
    return NAMED_NUMBERS[i]


# Drawn by index: a failure's report then does not print 4,000 parentheses.
strings = st.one_of(st.integers(0, len(NAMED_STRINGS) - 1).map(named_string), st.text(max_size=30))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, len(NAMED_NUMBERS) - 1).map(named_number),
    strings,
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10), st.integers(), st.none())
yaml_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
small = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=4,
)

# A right value for each key: a mapping drawn from these takes each key's
# right value two times in three, junk otherwise, so some of it parses.
RIGHT_EXPECT = {
    "response_ms_max": 1500,
    "response_ms_min": 10,
    "transcript_contains": ["nine", "five"],
    "transcript_not_contains": "closed",
    "transcript_matches": "(?i)nine",
    "barge_in_ms_max": 800,
    "clear_ms_max": 300,
    "silent": False,
    "bot_hangs_up": True,
    "max_underruns": 2,
    "answer_secs_max": 5.5,
}
RIGHT_BARGE_IN = {"after_ms": 600, "say": "sorry", "play": "cancel.wav"}
RIGHT_TURN = {
    "say": "hi",
    "play": "cancel.wav",
    "barge_in": RIGHT_BARGE_IN,
    "dtmf": "12#",
    "wait": 0.5,
    "listen": 1,
    "hangup": True,
    "name": "a turn",
    "answer_timeout": 2,
    "after_ms": 100,
}
RIGHT_SCENARIO = {
    "name": "fuzzed",
    "protocol": "raw",
    "uri": "ws://127.0.0.1:1/ws",
    "headers": {"Authorization": "Bearer ${BOT_TOKEN}"},
    "sample_rate": 8000,
    "voice": "en-us",
    "answer_timeout": 3,
    "answer_silence_ms": 500,
    "max_answer_secs": 20,
    "open_timeout": 1.5,
}


EIGHT = st.integers(0, 7)
TEN = st.integers(0, 9)


def maybe_junk(draw: st.DrawFn, value: Any) -> Any:
    """``value`` seven times in eight, junk otherwise."""
    return draw(small) if draw(EIGHT) == 0 else value


def shaped(right: dict, max_size: int = 4) -> st.SearchStrategy[dict]:
    """Some of ``right``'s keys with mostly right values, now and then a junk key."""
    names = st.lists(st.sampled_from(list(right)), unique=True, max_size=max_size)

    @st.composite
    def mappings(draw: st.DrawFn) -> dict:
        mapping = {name: maybe_junk(draw, right[name]) for name in draw(names)}
        if draw(TEN) == 0:
            mapping[draw(keys)] = draw(small)
        return mapping

    return mappings()


shaped_barge_in = shaped(RIGHT_BARGE_IN, 2)
shaped_expect = shaped(RIGHT_EXPECT)
shaped_extras = shaped({k: RIGHT_TURN[k] for k in ("name", "answer_timeout", "after_ms")}, 2)
actions = st.lists(st.sampled_from(ACTIONS), unique=True, min_size=1, max_size=2)


@st.composite
def shaped_turn(draw: st.DrawFn) -> dict:
    """One action (now and then two), maybe a name, a timeout and expectations."""
    turn = {}
    for action in draw(actions)[: 2 if draw(TEN) == 0 else 1]:
        value = draw(shaped_barge_in) if action == "barge_in" else RIGHT_TURN[action]
        turn[action] = maybe_junk(draw, value)
    extras = draw(shaped_extras)
    if draw(st.booleans()):
        extras["expect"] = maybe_junk(draw, draw(shaped_expect))
    return {**turn, **extras}


def junk_one_in_eight(turn: dict, junk: Any, dice: int) -> Any:
    return junk if dice == 0 else turn


scenario_shaped = st.builds(
    lambda top, turns: {**top, "turns": turns},
    shaped(RIGHT_SCENARIO),
    st.lists(st.builds(junk_one_in_eight, shaped_turn(), small, EIGHT), max_size=6),
)


def key_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in nested dicts and lists, as a tuple of keys and indexes."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths += key_paths(child, (*prefix, key))
    return paths


EXAMPLE_DATA = yaml.safe_load(EXAMPLE)
EXAMPLE_PATHS = key_paths(EXAMPLE_DATA)


def mutated(data: Any, path: tuple, junk: Any, drop: bool) -> Any:
    """A copy of ``data`` with the value at ``path`` dropped or replaced by ``junk``."""
    if not path:
        return junk
    key, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy: Any = dict(data)
    else:
        copy = list(data)
    if rest:
        copy[key] = mutated(copy[key], rest, junk, drop)
    elif drop:
        del copy[key]
    else:
        copy[key] = junk
    return copy


@st.composite
def example_mutations(draw: st.DrawFn) -> Any:
    path = draw(st.sampled_from(EXAMPLE_PATHS))
    drop = draw(st.booleans())
    return mutated(EXAMPLE_DATA, path, draw(yaml_like), drop)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``cancel.wav``, the example's ``play:`` file."""
    path = tmp_path_factory.mktemp("scenarios")
    write_wav(path / "cancel.wav", bytes(3200), 16000)
    return path


def check_sound(scenario: Scenario) -> None:
    """What every scenario that parsed must satisfy."""
    assert isinstance(scenario, Scenario)
    assert scenario.turns
    kinds = [t.kind for t in scenario.turns]
    assert all(kind in ACTIONS for kind in kinds)
    assert "hangup" not in kinds[:-1]
    for before, turn in zip([None, *kinds[:-1]], scenario.turns, strict=True):
        if turn.kind == "barge_in":
            assert before in ("say", "play", "dtmf", "listen")
            assert (turn.text is None) != (turn.audio is None)
        if turn.kind == "play":
            assert turn.audio is not None and turn.audio.is_file()
        if turn.kind == "dtmf":
            assert turn.digits and set(turn.digits) <= set("0123456789*#ABCD")
        numbers = [turn.after_ms, turn.seconds, turn.answer_timeout]
        numbers += [getattr(turn.expect, k) for k in EXPECT_KEYS if k.endswith(("max", "min"))]
        numbers += [turn.expect.max_underruns]
        assert all(n is None or (math.isfinite(n) and n >= 0) for n in numbers)
    rate = scenario.sample_rate
    assert rate is None or (isinstance(rate, int) and rate >= 8000)
    for n in (scenario.answer_timeout, scenario.answer_silence_ms, scenario.open_timeout):
        assert math.isfinite(n) and n > 0
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in scenario.headers.items())


def parse_or_error(data: Any, path: Path) -> None:
    """Parse; a ScenarioError must name the file first."""
    try:
        scenario = parse_scenario(data, path=path, env=ENV)
    except ScenarioError as e:
        assert str(e).startswith(f"{path}: ")
        event("ScenarioError")
        return
    event("parsed")
    check_sound(scenario)


@given(data=yaml_like)
@FUZZ
def test_any_data_is_a_scenario_or_a_scenario_error(folder: Path, data: Any) -> None:
    parse_or_error(data, folder / "s.yaml")


@given(data=scenario_shaped)
@SHAPED_FUZZ
def test_scenario_shaped_data_is_a_scenario_or_a_scenario_error(folder: Path, data: Any) -> None:
    parse_or_error(data, folder / "s.yaml")


@given(data=example_mutations())
@FUZZ
def test_the_example_mutated_is_a_scenario_or_a_scenario_error(folder: Path, data: Any) -> None:
    parse_or_error(data, folder / "s.yaml")


def test_the_example_itself_parses(folder: Path) -> None:
    check_sound(parse_scenario(EXAMPLE_DATA, path=folder / "s.yaml", env=ENV))


YAML_TOKENS = [
    "turns:",
    "name:",
    "expect:",
    "- ",
    "say: hi",
    "play: cancel.wav",
    "barge_in:",
    "after_ms:",
    "dtmf: '12#'",
    "wait:",
    "hangup: true",
    "response_ms_max:",
    "transcript_matches:",
    "sample_rate:",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\n  ",
    "\n    ",
    "'",
    '"',
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "!!int ",
    "!!float ",
    "!!str ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!python/object:os.system ",
    "? ",
    "2001-02-30",
    "2026-01-01 10:00:00",
    ".inf",
    ".nan",
    "-.inf",
    "0x1F",
    "1e400",
    "12345678901234567890",
    "~",
    "null",
    "yes",
    "${BOT_TOKEN}",
    "${NOPE}",
    "---",
    "...",
    "%YAML 1.1\n",
    "#",
    "\t",
    "|",
    ">",
]


def long_integer(text: str) -> str:
    return text.replace("12345678901234567890", "1" * 5000)


texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join).map(long_integer),
    st.one_of(yaml_like, scenario_shaped, example_mutations()).map(
        lambda data: yaml.safe_dump(data, allow_unicode=True)
    ),
)


def load_or_error(path: Path) -> None:
    try:
        scenario = load_scenario(path, env=ENV)
    except ScenarioError as e:
        assert str(e).startswith(f"{path}: ")
        event("ScenarioError")
        return
    event("parsed")
    check_sound(scenario)


@given(text=texts)
@FUZZ
def test_any_text_file_is_a_scenario_or_a_scenario_error(folder: Path, text: str) -> None:
    path = folder / "text.yaml"
    path.write_text(text, encoding="utf-8")
    load_or_error(path)


@given(content=st.binary(max_size=200) | texts.map(lambda t: t.encode("utf-16")))
@FUZZ
def test_any_bytes_file_is_a_scenario_or_a_scenario_error(folder: Path, content: bytes) -> None:
    path = folder / "bytes.yaml"
    path.write_bytes(content)
    load_or_error(path)
