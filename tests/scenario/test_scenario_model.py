"""Scenario files (scenario.model): the issue's example, every field, every mistake named.

A mistake is a :class:`ScenarioError` whose message names the file, the turn
(``turn 3``) and the key at fault, so a user can find it without reading the
parser. The regressions at the end are inputs the fuzzing
(``tests/scenario/test_scenario_fuzz.py``) found raising something else.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.scenario.model import (
    Expect,
    Scenario,
    ScenarioError,
    Turn,
    expand_env,
    find_scenarios,
    load_scenario,
    parse_scenario,
)

EXAMPLE = """\
name: opening hours
protocol: twilio
uri: ws://127.0.0.1:8765/ws
headers: {Authorization: "Bearer ${BOT_TOKEN}"}
turns:
  - say: "What are your opening hours?"
    expect:
      response_ms_max: 1500
      transcript_contains: ["nine", "five"]
  - play: cancel.wav
    expect: {transcript_matches: "(?i)cancel"}
  - barge_in: {after_ms: 600, say: "Sorry, one more thing"}
    expect:
      barge_in_ms_max: 800
  - dtmf: "12#"
    expect: {response_ms_max: 2000}
  - wait: 2.0
    expect: {silent: true}
  - hangup: true
"""

ENV = {"BOT_TOKEN": "s3cret"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with ``cancel.wav`` (100 ms of silence) for ``play:``."""
    write_wav(tmp_path / "cancel.wav", bytes(3200), 16000)
    return tmp_path


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_issues_example_parses_with_every_field(folder: Path) -> None:
    path = write(folder, EXAMPLE)
    scenario = load_scenario(path, env=ENV)

    assert isinstance(scenario, Scenario)
    assert scenario.name == "opening hours"
    assert scenario.protocol == "twilio"
    assert scenario.uri == "ws://127.0.0.1:8765/ws"
    assert dict(scenario.headers) == {"Authorization": "Bearer s3cret"}
    assert scenario.path == path
    assert scenario.voice is None
    assert scenario.answer_timeout == 10.0
    assert scenario.answer_silence_ms == 800.0
    assert scenario.max_answer_secs == 60.0
    assert scenario.open_timeout == 5.0

    assert [t.kind for t in scenario.turns] == [
        "say",
        "play",
        "barge_in",
        "dtmf",
        "wait",
        "hangup",
    ]
    say, play, barge_in, dtmf, wait, hangup = scenario.turns
    assert say == Turn(
        kind="say",
        text="What are your opening hours?",
        expect=Expect(response_ms_max=1500.0, transcript_contains=("nine", "five")),
    )
    assert isinstance(say.expect.response_ms_max, float)
    assert say.expect.needs_transcript
    assert say.label == "What are your opening hours?"

    assert play.audio == folder / "cancel.wav"
    assert play.text is None
    assert play.expect == Expect(transcript_matches="(?i)cancel")
    assert play.label == "play: cancel.wav"

    assert barge_in.text == "Sorry, one more thing"
    assert barge_in.after_ms == 600.0
    assert barge_in.audio is None
    assert barge_in.expect == Expect(barge_in_ms_max=800.0)
    assert barge_in.label == "barge in: Sorry, one more thing"

    assert dtmf.digits == "12#"
    assert dtmf.expect == Expect(response_ms_max=2000.0)
    assert dtmf.label == "dtmf 12#"

    assert wait.seconds == 2.0
    assert wait.expect == Expect(silent=True)
    assert not wait.expect.needs_transcript
    assert wait.label == "wait 2 s"

    assert hangup == Turn(kind="hangup")
    assert hangup.label == "hangup"
    assert all(t.answer_timeout is None for t in scenario.turns)


def test_every_optional_field(folder: Path) -> None:
    text = """\
name: all of it
protocol: raw
sample_rate: 8000
voice: en-us
answer_timeout: 4
answer_silence_ms: 500
max_answer_secs: 20
open_timeout: 2.5
turns:
  - listen: 3
    name: greeting
    answer_timeout: 7
    expect:
      response_ms_min: 100
      transcript_contains: hello
      transcript_not_contains: [goodbye, "error"]
      silent: false
      max_underruns: 2
      answer_secs_max: 6.5
  - barge_in: {play: cancel.wav}
    expect: {clear_ms_max: 300, bot_hangs_up: true}
"""
    scenario = load_scenario(write(folder, text), env={})
    assert (scenario.protocol, scenario.sample_rate, scenario.voice) == ("raw", 8000, "en-us")
    assert isinstance(scenario.sample_rate, int)
    assert (scenario.answer_timeout, scenario.answer_silence_ms) == (4.0, 500.0)
    assert (scenario.max_answer_secs, scenario.open_timeout) == (20.0, 2.5)
    listen, barge_in = scenario.turns
    assert (listen.kind, listen.seconds, listen.name, listen.label) == (
        "listen",
        3.0,
        "greeting",
        "greeting",
    )
    assert listen.answer_timeout == 7.0
    assert listen.expect == Expect(
        response_ms_min=100.0,
        transcript_contains=("hello",),
        transcript_not_contains=("goodbye", "error"),
        silent=False,
        max_underruns=2,
        answer_secs_max=6.5,
    )
    assert (barge_in.audio, barge_in.after_ms) == (folder / "cancel.wav", 0.0)
    assert barge_in.expect == Expect(clear_ms_max=300.0, bot_hangs_up=True)


def test_a_file_without_uri_keeps_it_none_and_defaults_to_pipecat(folder: Path) -> None:
    scenario = load_scenario(write(folder, "turns: [{say: hi}]\n", "hello.yaml"), env={})
    assert scenario.uri is None
    assert scenario.protocol == "pipecat"
    assert scenario.name == "hello"  # the file's stem
    assert dict(scenario.headers) == {}


def test_env_defaults_and_the_process_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        'uri: "${BOT_URI:-ws://localhost:9/ws}"\nheaders: {X-Key: "${KEY}"}\nturns: [{say: hi}]\n'
    )
    path = write(folder, text)
    assert load_scenario(path, env={"KEY": "k"}).uri == "ws://localhost:9/ws"
    assert load_scenario(path, env={"KEY": "k", "BOT_URI": "ws://bot/ws"}).uri == "ws://bot/ws"
    monkeypatch.setenv("KEY", "from-os")
    monkeypatch.delenv("BOT_URI", raising=False)
    assert dict(load_scenario(path).headers) == {"X-Key": "from-os"}


def test_expand_env() -> None:
    value = {"a": ["${A}", {"b": "x${B:-dflt}y"}], "n": 3, "empty": "${E:-}"}
    assert expand_env(value, {"A": "1"}, "here") == {
        "a": ["1", {"b": "xdflty"}],
        "n": 3,
        "empty": "",
    }
    with pytest.raises(ScenarioError, match=r"^here: \$\{NOPE\} is not set"):
        expand_env("${NOPE}", {}, "here")


def test_parse_scenario_without_a_path() -> None:
    scenario = parse_scenario({"turns": [{"say": "${WHO:-you}"}]})
    assert scenario.name == "scenario"
    assert scenario.turns[0].text == "you"
    assert scenario.path is None


# Each mistake: the file's text, then what the message must name besides the file.
MISTAKES = {
    "unknown top-level key": ("turnz: []\nturns: [{say: hi}]\n", ["unknown key 'turnz'"]),
    "unknown turn key": ("turns: [{say: hi}, {say: ho, exepct: {}}]\n", ["turn 2", "'exepct'"]),
    "two actions": ("turns: [{say: hi, dtmf: '1'}]\n", ["turn 1", "say, dtmf"]),
    "no action": ("turns: [{say: hi}, {expect: {silent: true}}]\n", ["turn 2", "found: none"]),
    "barge_in first": (
        "turns: [{barge_in: {after_ms: 100, say: hi}}]\n",
        ["turn 1", "barge_in"],
    ),
    "barge_in after a wait": (
        "turns: [{wait: 1}, {barge_in: {say: hi}}]\n",
        ["turn 2", "barge_in"],
    ),
    "barge_in without say or play": (
        "turns: [{say: hi}, {barge_in: {after_ms: 100}}]\n",
        ["turn 2", "barge_in", "'say' or 'play'"],
    ),
    "barge_in with say and play": (
        "turns: [{say: hi}, {barge_in: {say: hi, play: cancel.wav}}]\n",
        ["turn 2", "barge_in", "'say' or 'play'"],
    ),
    "negative after_ms": (
        "turns: [{say: hi}, {barge_in: {after_ms: -5, say: hi}}]\n",
        ["turn 2", "after_ms", "-5"],
    ),
    "bad dtmf key": ("turns: [{dtmf: '12x'}]\n", ["turn 1", "dtmf", "'12x'"]),
    "empty dtmf": ("turns: [{dtmf: ''}]\n", ["turn 1", "dtmf"]),
    "hangup not last": ("turns: [{hangup: true}, {say: hi}]\n", ["turn 1", "hangup", "last"]),
    "hangup not true": ("turns: [{hangup: false}]\n", ["turn 1", "hangup: true"]),
    "hangup with expect": (
        "turns: [{say: hi}, {hangup: true, expect: {bot_hangs_up: true}}]\n",
        ["turn 2", "hangup", "expect"],
    ),
    "unknown expect key": (
        "turns: [{say: hi, expect: {response_ms: 5}}]\n",
        ["turn 1", "expect", "'response_ms'"],
    ),
    "non-numeric response_ms_max": (
        "turns: [{say: hi, expect: {response_ms_max: fast}}]\n",
        ["turn 1", "response_ms_max", "'fast'"],
    ),
    "boolean as a number": (
        "turns: [{say: hi, expect: {response_ms_max: true}}]\n",
        ["turn 1", "response_ms_max", "True"],
    ),
    "fractional max_underruns": (
        "turns: [{say: hi, expect: {max_underruns: 1.5}}]\n",
        ["turn 1", "max_underruns", "whole number"],
    ),
    "silent not a boolean": (
        "turns: [{say: hi, expect: {silent: 'yes please'}}]\n",
        ["turn 1", "silent", "true or false"],
    ),
    "transcript_contains not phrases": (
        "turns: [{say: hi, expect: {transcript_contains: [nine, 9]}}]\n",
        ["turn 1", "transcript_contains"],
    ),
    "bad regex": (
        "turns: [{say: hi}, {say: ho, expect: {transcript_matches: '(open'}}]\n",
        ["turn 2", "transcript_matches", "'(open'"],
    ),
    "missing play file": ("turns: [{say: hi}, {play: nope.wav}]\n", ["turn 2", "play", "nope.wav"]),
    "empty say": ("turns: [{say: '  '}]\n", ["turn 1", "say"]),
    "unset variable in a turn": (
        "turns: [{say: hi}, {say: hi}, {say: 'I am ${CALLER_NAME}'}]\n",
        ["turn 3", "say", "${CALLER_NAME}"],
    ),
    "unset variable in a header": (
        'headers: {Authorization: "Bearer ${BOT_TOKEN}"}\nturns: [{say: hi}]\n',
        ["headers", "${BOT_TOKEN}"],
    ),
    "unknown protocol": ("protocol: sip\nturns: [{say: hi}]\n", ["protocol", "'sip'"]),
    "empty turns": ("name: nothing\nturns: []\n", ["'turns'"]),
    "no turns": ("name: nothing\n", ["'turns'"]),
    "YAML syntax error": ("turns: [{say: hi}\n", ["not valid YAML", "line"]),
    "a list": ("- say: hi\n- hangup: true\n", ["mapping", "list"]),
    "sample_rate too low": ("sample_rate: 100\nturns: [{say: hi}]\n", ["sample_rate", "8000"]),
    "headers not a mapping": ("headers: [a]\nturns: [{say: hi}]\n", ["'headers'"]),
    "uri not a string": ("uri: 5\nturns: [{say: hi}]\n", ["'uri'"]),
    "turn not a mapping": ("turns: [{say: hi}, hello]\n", ["turn 2", "mapping"]),
}


@pytest.mark.parametrize(("text", "named"), list(MISTAKES.values()), ids=list(MISTAKES))
def test_each_mistake_names_the_file_turn_and_key(
    folder: Path, text: str, named: list[str]
) -> None:
    path = write(folder, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for part in named:
        assert part in message, (part, message)


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    with pytest.raises(ScenarioError, match=r"gone\.yaml: No such file"):
        load_scenario(path, env={})


def test_find_scenarios_in_a_folder_sorted_yaml_and_yml_only(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yaml", "c.yaml", "notes.txt", "d.json", "e.YAML.bak"):
        (tmp_path / name).write_text("turns: [{say: hi}]\n")
    single = tmp_path / "notes.txt"
    assert find_scenarios([tmp_path]) == [tmp_path / n for n in ("a.yaml", "b.yml", "c.yaml")]
    # A file named is taken as it is, in the order given.
    assert find_scenarios([single, tmp_path / "a.yaml"]) == [single, tmp_path / "a.yaml"]


def test_find_scenarios_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="nowhere: no such file or folder"):
        find_scenarios([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match=r"empty: no \.yaml scenario"):
        find_scenarios([tmp_path / "empty"])


# Regressions: inputs that raised something other than ScenarioError (OverflowError,
# ValueError, RuntimeError, OSError, RecursionError, UnicodeDecodeError, and PyYAML's
# AttributeError and IndexError), found by reading the parser and by the fuzzing.


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"sample_rate": math.inf}, "sample_rate must be a finite number"),
        ({"sample_rate": math.nan}, "sample_rate must be a finite number"),
        ({"answer_timeout": math.nan}, "answer_timeout must be a finite number"),
        ({"turns": [{"wait": math.nan}]}, "turn 1: wait must be a finite number"),
        (
            {"turns": [{"say": "hi", "expect": {"max_underruns": math.nan}}]},
            "turn 1: expect: max_underruns must be a finite number",
        ),
        (
            {"turns": [{"say": "hi", "expect": {"response_ms_max": math.nan}}]},
            "turn 1: expect: response_ms_max must be a finite number",
        ),
        (
            {"turns": [{"say": "hi", "expect": {"response_ms_max": 10**400}}]},
            "turn 1: expect: response_ms_max must be a finite number",
        ),
        (
            {"turns": [{"say": "hi", "expect": {"transcript_matches": "a{99999999999}"}}]},
            "turn 1: expect: transcript_matches: ",
        ),
        (
            {"turns": [{"say": "hi", "expect": {"transcript_matches": "(" * 3000 + ")" * 3000}}]},
            "turn 1: expect: transcript_matches: ",
        ),
        ({"turns": [{"play": "~no-such-user-here/x.wav"}]}, "turn 1: play: no such file"),
        ({"turns": [{"play": "x" * 300 + ".wav"}]}, "turn 1: play: no such file"),
        ({"turns": [{"play": "a\x00b.wav"}]}, "turn 1: play: no such file"),
    ],
)
def test_regressions_parse_scenario(data: dict, named: str) -> None:
    data = {"turns": [{"say": "hi"}], **data}
    with pytest.raises(ScenarioError, match="^scenario: " + named.replace("(", r"\(")):
        parse_scenario(data)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"turns: 2001-02-30\n", "not valid YAML: day is out of range"),
        (b"turns: " + b"1" * 5000 + b"\n", "not valid YAML: "),
        (b"[" * 3000 + b"]" * 3000, "not valid YAML: "),
        (b"!!timestamp", "not valid YAML: "),
        (b"!!float", "not valid YAML: "),
        (b"!!int", "not valid YAML: "),
        (b"turns: 0000-00-00", "not valid YAML: year 0 is out of range"),
        (b"turns: &a [*a]\n", "more than 100000 values (YAML aliases included)"),
        ("turns: [{say: 'caf\xe9'}]\n".encode("latin-1"), "not UTF-8 text"),
    ],
    ids=[
        "bad date",
        "long integer",
        "deep nesting",
        "empty timestamp",
        "empty float",
        "empty int",
        "year 0",
        "alias in itself",
        "latin-1",
    ],
)
def test_regressions_load_scenario(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, env={})
    assert str(caught.value).startswith(f"{path}: {named}")


def test_env_values_are_expanded_once(folder: Path) -> None:
    # A value that looks like a variable is not expanded again.
    scenario = load_scenario(write(folder, "turns: [{say: '${A}'}]\n"), env={"A": "${B}"})
    assert scenario.turns[0].text == "${B}"


def test_barge_in_expectations_only_on_a_barge_in_turn(tmp_path):
    for key in ("barge_in_ms_max", "clear_ms_max"):
        with pytest.raises(ScenarioError, match=f"turn 1: expect: .*{key[:8]}.*barge_in turn"):
            parse_scenario(
                {"turns": [{"say": "hi", "expect": {key: 500}}]}, path=tmp_path / "s.yaml"
            )


def test_a_yaml_alias_bomb_is_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\nturns:\n  - say: *a8\n")
    with pytest.raises(ScenarioError, match="more than 100000 values"):
        load_scenario(path)
