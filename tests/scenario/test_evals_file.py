"""Pipecat's own eval files (scenario.evals_file): run as they are, what is not observable said so.

Each file here is a real ``pipecat.evals`` file (``EvalScenarioFile.load``
accepts it, as the first test checks); the conversion to our scenarios is
asserted exactly: turn kinds, texts, every :class:`Expect` field, the "not
observable from outside" descriptions and the names. Mistakes and what a phone
line cannot do are one-line :class:`ScenarioError` naming the file, the
scenario and the turn. The command line gets past loading such a file (then
fails to connect, or finds the judge unreachable), and against a local bot it
reports the internal events as skipped, never passed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pipecat.evals.scenario import EvalScenarioFile
from pipecat.evals.simulation import EvalSimulationScenario

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.scenario.consent import UNTRUSTED, Consent
from pipecat_wsclient.scenario.evals_file import (
    included_files,
    is_evals_file,
    load_evals_file,
    peek_yaml,
)
from pipecat_wsclient.scenario.model import (
    Expect,
    ScenarioError,
    Turn,
    find_scenarios,
    load_scenario,
    load_scenarios,
)
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer
from support.commands import cli

UNREACHABLE_JUDGE = "http://127.0.0.1:1/v1"

JUDGE_AUDIO = f"""\
modality: audio
transcription: {{service: whisper, model: tiny.en}}
eval: {{service: ollama, model: gemma4:12b, endpoint: "{UNREACHABLE_JUDGE}"}}
"""

SIMULATION = f"""\
name: diner
judge:
  eval: {{service: openai, model: gpt-4.1-mini, endpoint: "{UNREACHABLE_JUDGE}"}}
persona: "Jamie, calling a restaurant. Friendly and to the point."
success: "the bot did what the caller asked and confirmed it"
metrics:
  - name: politeness
    criterion: "the bot stayed courteous throughout"
    min_score: 0.5
  - name: booked
    measure: function_calls
    calls: [{{name: book_table, args: {{party: 2}}}}]
  - measure: turns
    max_value: 8
scenarios:
  - name: book
    goal: "Book a table for two at 6 PM tonight, then end the call."
  - name: cancel
    goal: "Cancel tonight's booking under the name Jamie, then end the call."
    max_turns: 6
"""

# Every expectation kind of pipecat.evals.script, in audio modality (tts_response
# needs the bot to speak), with a recording and keys.
EVERY_KIND = """\
name: booking
judge: !include judge_audio.yaml
user:
  modality: audio
  speech: {service: kokoro, voice: af_heart}
scenarios:
  - name: every_kind
    turns:
      - expect:                                  # 1: the bot speaks first
          - event: bot_started_speaking
            within_ms: 15000
          - event: response
            eval: "greets the caller"
      - user: "Book a table for two at six"      # 2
        expect:
          - event: user_started_speaking
          - event: user_stopped_speaking
          - event: vad_user_started_speaking
          - event: vad_user_stopped_speaking
          - event: user_transcription
            text_contains: "table for two"
          - event: llm_started
          - event: function_call
            calls:
              - name: book_table
                args: {party: 2}
              - check_availability
          - event: function_call
            name: send_sms
            eval: "a confirmation text to the caller"
          - event: function_call_stopped
            calls:
              - name: book_table
                args: {cancelled: false}
          - event: response
            text_contains: "six"
            text_excludes: "sorry"
            within_ms: 2000
            eval: "confirms the booking"
            check_from: turn_start
          - event: llm_response
            text_contains: "two"
          - event: tts_response
            eval: "speaks clearly"
            within_ms: 4000
          - event: bot_stopped_speaking
            within_ms: 9000
          - event: response
            absent: true
            within_ms: 3000
      - user: "What is the capital of Germany?"  # 3: a recording
        audio: capital.wav
        expect:
          - event: tts_response
            text_contains: Berlin
      - user: "Actually, never mind."            # 4: talks over the answer
        send_after: {event: bot_started_speaking, delay_ms: 500}
        expect:
          - event: bot_interrupted
            within_ms: 800
          - event: llm_marker
            marker: complete
            marker_first: true
            markers: 1
            text_after: true
      - dtmf: "12#"                              # 5
        expect:
          - event: bot_interrupted
          - event: user_backchannel
          - event: bot_backchannel
          - event: image
          - event: some_new_event
          - event: function_call
            absent: true
            within_ms: 1000
      - user: "hmm, let me think"                # 6: the bot waits
        expect:
          - event: llm_marker
            marker: incomplete
          - event: response
            absent: true
            within_ms: 2500
      - expect:                                  # 7: nothing more
          - event: bot_started_speaking
            absent: true
            within_ms: 1500
      - user: "Are you there?"                   # 8: quiet first, then the answer
        expect:
          - event: response
            absent: true
            within_ms: 1200
          - event: response
            within_ms: 30000
"""


def write(folder: Path, text: str, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def every_kind(tmp_path: Path) -> Path:
    write_wav(tmp_path / "capital.wav", bytes(3200), 16000)
    write(tmp_path, JUDGE_AUDIO, "judge_audio.yaml")
    return write(tmp_path, EVERY_KIND, "every_kind.yaml")


def scripted(folder: Path, turns: str, name: str = "f.yaml", head: str = "") -> Path:
    """A one-scenario pipecat.evals file ``f/s`` with these turns (indented YAML)."""
    return write(folder, f"name: f\n{head}scenarios:\n  - name: s\n    turns:\n{turns}", name)


# -- what a pipecat.evals file is ---------------------------------------------------------


def test_pipecat_loads_every_file_of_these_tests(tmp_path: Path, every_kind: Path) -> None:
    for path in (every_kind, write(tmp_path, SIMULATION, "sim.yaml")):
        assert len(EvalScenarioFile.load(path).scenarios) >= 1


def test_a_pipecat_evals_file_is_a_mapping_with_scenarios() -> None:
    assert is_evals_file({"name": "f", "scenarios": [{"name": "s", "turns": []}]})
    assert is_evals_file({"name": "f", "scenarios": "not a list"})  # Pipecat says why
    assert not is_evals_file({"name": "ours", "turns": [{"say": "hi"}]})
    assert not is_evals_file([{"scenarios": []}])
    assert not is_evals_file(None)


def test_peek_reads_an_include_as_nothing_and_names_it() -> None:
    data, written = peek_yaml("name: f\njudge: !include ../judge.yaml\nscenarios: []\n")
    assert data == {"name": "f", "judge": None, "scenarios": []}
    assert written == ["../judge.yaml"]


# -- simulations ----------------------------------------------------------------------------


def test_a_simulation_file_becomes_simulated_callers(tmp_path: Path) -> None:
    path = write(tmp_path, SIMULATION, "sim.yaml")
    book, cancel = load_scenarios(path)

    assert [book.name, cancel.name] == ["diner/book", "diner/cancel"]
    for scenario in (book, cancel):
        assert scenario.turns == ()
        assert scenario.uri is None and scenario.protocol == "pipecat"
        assert scenario.path == path
        assert scenario.notes == ()
        assert scenario.judge == {
            "service": "openai",
            "model": "gpt-4.1-mini",
            "endpoint": UNREACHABLE_JUDGE,
        }
        simulation = scenario.simulation
        assert simulation is not None
        assert isinstance(simulation.spec, EvalSimulationScenario)
        assert simulation.not_observable == ("booked",)  # a function_calls measure
        assert [m.name for m in simulation.judged_metrics] == ["politeness"]
        assert [m.name for m in simulation.measured_metrics] == ["turns"]
        assert simulation.speak_first_after_s == 3.0 and simulation.interrupt_after_s is None
    assert book.simulation is not None and cancel.simulation is not None
    assert book.simulation.spec.goal.startswith("Book a table")
    assert (book.simulation.spec.max_turns, cancel.simulation.spec.max_turns) == (20, 6)


def test_a_simulation_over_our_limits_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SIMULATION.replace("max_turns: 6", "max_turns: 5000"), "sim.yaml")
    with pytest.raises(ScenarioError, match=r"sim\.yaml: diner/cancel: max_turns must be at most"):
        load_scenarios(path)


# -- scripted scenarios: every expectation kind ---------------------------------------------


def test_every_expectation_kind_is_mapped(tmp_path: Path, every_kind: Path) -> None:
    (scenario,) = load_scenarios(every_kind)

    assert scenario.name == "booking/every_kind"
    assert scenario.uri is None and scenario.protocol == "pipecat" and scenario.path == every_kind
    assert scenario.simulation is None
    assert scenario.judge == {
        "service": "ollama",
        "model": "gemma4:12b",
        "endpoint": UNREACHABLE_JUDGE,
    }
    assert scenario.notes == ()
    assert list(scenario.turns) == [
        Turn(
            kind="listen",
            seconds=15.0,
            expect=Expect(response_ms_max=15000, silent=False, eval=("greets the caller",)),
        ),
        Turn(
            kind="say",
            text="Book a table for two at six",
            expect=Expect(
                response_ms_max=2000,
                transcript_contains=("six", "two"),
                transcript_not_contains=("sorry",),
                silent=False,
                eval=("confirms the booking", "speaks clearly"),
                not_observable=(
                    "user_started_speaking",
                    "user_stopped_speaking",
                    "vad_user_started_speaking",
                    "vad_user_stopped_speaking",
                    "the bot's transcription contains 'table for two'",
                    "llm_started",
                    "function_call book_table(party=2), check_availability",
                    "function_call send_sms judged 'a confirmation text to the caller'",
                    "function_call_stopped book_table(cancelled=False)",
                    "bot_stopped_speaking within 9000 ms of the send",
                    "no response after the reply",
                ),
            ),
        ),
        Turn(
            kind="play",
            text="What is the capital of Germany?",
            audio=tmp_path / "capital.wav",
            expect=Expect(transcript_contains=("Berlin",), silent=False),
        ),
        Turn(
            kind="barge_in",
            text="Actually, never mind.",
            after_ms=500,
            expect=Expect(
                barge_in_ms_max=800,
                not_observable=("llm_marker complete marker_first true markers 1 text_after true",),
            ),
        ),
        Turn(
            kind="dtmf",
            digits="12#",
            expect=Expect(
                not_observable=(
                    "bot_interrupted",
                    "user_backchannel",
                    "bot_backchannel",
                    "image",
                    "some_new_event",
                    "no function_call",
                )
            ),
        ),
        Turn(
            kind="say",
            text="hmm, let me think",
            expect=Expect(silent=True, not_observable=("llm_marker incomplete",)),
            answer_timeout=2.5,
        ),
        Turn(kind="wait", seconds=1.5, expect=Expect(silent=True)),
        Turn(
            kind="say",
            text="Are you there?",
            expect=Expect(response_ms_max=30000, response_ms_min=1200, silent=False),
            answer_timeout=30.0,
        ),
    ]


def test_in_text_modality_a_response_is_the_llm_response(tmp_path: Path) -> None:
    path = scripted(
        tmp_path,
        """\
      - user: "What is the capital of Germany?"
        expect:
          - event: response
            text_contains: Berlin
          - event: response
            absent: true
            within_ms: 2000
      - user: "Thanks"
""",
    )
    (scenario,) = load_scenarios(path)
    assert scenario.name == "f/s"
    assert scenario.turns == (
        Turn(
            kind="say",
            text="What is the capital of Germany?",
            expect=Expect(
                transcript_contains=("Berlin",),
                silent=False,
                not_observable=("no llm_response after the reply",),
            ),
        ),
        Turn(kind="say", text="Thanks"),
    )
    # Pipecat's default judge (a local Ollama), as check_llms and judge_turns read it.
    assert scenario.judge is not None and scenario.judge["service"] == "ollama"


# -- pacing: send_after without a barge-in --------------------------------------------------


def test_pacing_keys_shortens_the_wait_of_the_turn_before(tmp_path: Path) -> None:
    path = scripted(
        tmp_path,
        """\
      - dtmf: "1"
      - dtmf: "2"
        send_after: {delay_ms: 400}
      - dtmf: "#"
        send_after: {delay_ms: 50}
        expect:
          - event: response
""",
    )
    (scenario,) = load_scenarios(path)
    assert scenario.turns == (
        Turn(kind="dtmf", digits="1", answer_timeout=0.4),
        Turn(kind="dtmf", digits="2", answer_timeout=0.1),
        Turn(kind="dtmf", digits="#", expect=Expect(silent=False)),
    )
    assert scenario.notes == ()


def test_pacing_a_phone_line_cannot_follow_is_a_note(tmp_path: Path) -> None:
    path = scripted(
        tmp_path,
        """\
      - user: "Hello"
        send_after: {delay_ms: 300}
        expect:
          - event: response
      - user: "Go on"
        send_after: {delay_ms: 700}
      - user: "And then?"
        send_after: {event: bot_stopped_speaking, delay_ms: 1500}
      - user: "Right"
        send_after: {event: bot_stopped_speaking}
""",
    )
    (scenario,) = load_scenarios(path)
    assert [t.kind for t in scenario.turns] == ["say"] * 4
    assert all(t.answer_timeout is None for t in scenario.turns)
    where = f"{path}: f/s"
    assert scenario.notes == (
        f"{where}: turn 1: send_after delay_ms 300: said once the call is up",
        f"{where}: turn 2: send_after delay_ms 700: said once the answer to the turn before ended",
        f"{where}: turn 3: send_after bot_stopped_speaking + 1500 ms: said once the bot's "
        "answer ended (800 ms of silence, answer_silence_ms)",
    )


def test_talking_over_the_answer_is_a_barge_in_for_each_answer_event(tmp_path: Path) -> None:
    events = ["bot_started_speaking", "llm_started", "response", "llm_response"]
    turns = "".join(
        f"      - user: 'Tell me a long story'\n"
        f"      - user: 'stop {i}'\n        send_after: {{event: {event}, delay_ms: {i}}}\n"
        for i, event in enumerate(events)
    )
    (scenario,) = load_scenarios(scripted(tmp_path, turns))
    assert [(t.kind, t.text, t.after_ms) for t in scenario.turns[1::2]] == [
        ("barge_in", f"stop {i}", float(i)) for i in range(len(events))
    ]
    assert {t.kind for t in scenario.turns[::2]} == {"say"}


# -- includes, folders and consent ----------------------------------------------------------


SHARED_TURNS = """\
name: interruption
user: !include shared/user_audio.yaml
turns:
  - user: "Tell me a long story about Paris."
  - user: "Actually, what's the capital of Japan?"
    send_after: {event: llm_started, delay_ms: 2000}
    expect:
      - event: bot_interrupted
      - event: response
        eval: "says Tokyo instead of continuing the story"
scenarios:
  - name: text
    judge: !include shared/judge_text.yaml
  - name: audio
    judge: !include shared/judge_audio.yaml
"""


@pytest.fixture
def with_includes(tmp_path: Path) -> Path:
    write(
        tmp_path,
        "modality: audio\nspeech: {service: kokoro, voice: af_heart}\n",
        "shared/user_audio.yaml",
    )
    write(tmp_path, "modality: text\neval: !include judge_llm.yaml\n", "shared/judge_text.yaml")
    write(tmp_path, JUDGE_AUDIO, "shared/judge_audio.yaml")
    # A nested include resolves against the scenario file's folder, as in Pipecat.
    write(tmp_path, f"service: openai\nendpoint: '{UNREACHABLE_JUDGE}'\n", "judge_llm.yaml")
    return write(tmp_path, SHARED_TURNS, "interruption.yaml")


def test_a_file_with_includes_loads_as_pipecat_reads_it(with_includes: Path) -> None:
    text, audio = load_scenarios(with_includes, consent=UNTRUSTED)
    assert [text.name, audio.name] == ["interruption/text", "interruption/audio"]
    assert (
        text.turns
        == audio.turns
        == (
            Turn(kind="say", text="Tell me a long story about Paris."),
            Turn(
                kind="barge_in",
                text="Actually, what's the capital of Japan?",
                after_ms=2000,
                expect=Expect(silent=False, eval=("says Tokyo instead of continuing the story",)),
            ),
        )
    )
    assert text.judge == {"service": "openai", "endpoint": UNREACHABLE_JUDGE}
    assert audio.judge is not None and audio.judge["model"] == "gemma4:12b"


def test_a_folder_skips_the_fragments_its_files_include(with_includes: Path) -> None:
    folder = with_includes.parent
    files = find_scenarios([folder])
    assert files == [folder / "interruption.yaml", folder / "judge_llm.yaml"]
    assert included_files(files) == {folder / "judge_llm.yaml"}
    assert included_files(find_scenarios([folder / "shared"])) == set()  # no evals file there


def test_an_include_outside_the_folder_needs_consent(tmp_path: Path) -> None:
    write(tmp_path, "eval: {service: ollama}\n", "judge.yaml")
    path = write(
        tmp_path,
        "name: f\njudge: !include ../judge.yaml\nscenarios: [{name: s, turns: [{user: hi}]}]\n",
        "sent/f.yaml",
    )
    with pytest.raises(ScenarioError) as refused:
        load_scenarios(path, consent=UNTRUSTED)
    assert str(refused.value) == (
        f"{path}: !include: ../judge.yaml is outside the scenario's folder "
        f"({path.parent}): allow it with --allow-outside-files"
    )
    (allowed,) = load_scenarios(path, consent=Consent(env=frozenset(), outside_files=True))
    assert allowed.judge == {"service": "ollama"}


def test_a_recording_outside_the_folder_needs_consent(tmp_path: Path) -> None:
    write_wav(tmp_path / "private.wav", bytes(3200), 16000)
    path = scripted(
        tmp_path / "sent",
        "      - user: hello\n        audio: ../private.wav\n",
        head="user: {modality: audio}\n",
    )
    with pytest.raises(ScenarioError, match=r"outside the scenario's folder.*allow-outside-files"):
        load_scenarios(path, consent=UNTRUSTED)
    (scenario,) = load_scenarios(path)  # a file the program names itself
    assert scenario.turns[0].audio == tmp_path / "private.wav"


def test_our_own_files_load_as_before_and_do_not_include(tmp_path: Path) -> None:
    ours = write(tmp_path, "name: ours\nuri: ws://h/ws\nturns: [{say: hi}]\n", "ours.yaml")
    assert load_scenarios(ours) == [load_scenario(ours)]
    included = write(tmp_path, "judge: !include j.yaml\nturns: [{say: hi}]\n", "inc.yaml")
    with pytest.raises(ScenarioError) as refused:
        load_scenarios(included)
    assert str(refused.value) == (
        f"{included}: !include j.yaml: only a pipecat.evals file (a 'scenarios:' list) "
        "includes files"
    )


# -- mistakes, and what a phone line cannot do ---------------------------------------------


CANNOT = [
    (
        "context",
        "context:\n  - {role: system, content: 'You are a travel assistant.'}\n",
        "      - user: hi\n",
        "f/s: context: the bot's LLM context cannot be set over a phone line",
    ),
    (
        "image",
        "",
        "      - user: hi\n        image: photo.png\n",
        "f/s: turn 1: image: a phone line cannot serve the bot the images it asks for",
    ),
    (
        "pauses",
        "user: {modality: audio, speech: {service: kokoro, voice: af_heart}}\n",
        "      - user: ['So I went to', {pause_ms: 2000}, 'Spain.']\n",
        "f/s: turn 1: user: a turn with pauses (pause_ms) cannot be spoken here",
    ),
    (
        "mp3",
        "user: {modality: audio}\n",
        "      - user: hi\n        audio: hi.mp3\n",
        "f/s: turn 1: audio: hi.mp3: only WAV files are played here; convert it "
        "(ffmpeg -i hi.mp3 hi.wav)",
    ),
    (
        "missing wav",
        "user: {modality: audio}\n",
        "      - user: hi\n        audio: gone.wav\n",
        "f/s: turn 1: audio: no such file:",
    ),
    (
        "unobservable send_after",
        "",
        "      - user: hi\n      - user: again\n        send_after: {event: function_call}\n",
        "f/s: turn 2: send_after function_call: the bot's function_call is not observable "
        "from outside, so nothing can be timed from it over a phone line",
    ),
    (
        "keys over the bot",
        "",
        "      - user: hi\n      - dtmf: '1'\n        send_after: {event: llm_started}\n",
        "f/s: turn 2: send_after llm_started: keys cannot talk over the bot here",
    ),
    (
        "barge-in first",
        "",
        "      - user: hi\n        send_after: {event: bot_started_speaking}\n",
        "f/s: turn 1: send_after bot_started_speaking: talks over the answer to the turn before it",
    ),
    (
        "barge-in after a wait",
        "",
        "      - expect: [{event: response, absent: true, within_ms: 500}]\n"
        "      - user: hi\n        send_after: {event: response}\n",
        "f/s: turn 2: send_after response: talks over the answer to the turn before it",
    ),
    ("no turns", "", "      []\n", "f/s: 'turns:' is empty"),
    (
        "within_ms not a number",
        "",
        "      - user: hi\n        expect: [{event: response, within_ms: soon}]\n",
        "f/s: turn 1: expectation 1: within_ms must be milliseconds, not 'soon'",
    ),
    # Pipecat's own checks, as Pipecat words them.
    (
        "absent with text",
        "",
        "      - user: hi\n        expect: [{event: response, absent: true, text_contains: x}]\n",
        "turn #0 expectation #0 'absent: true' cannot be combined with 'text_contains'",
    ),
    (
        "both kinds",
        "persona: someone\n",
        "      - user: hi\n",
        "a scenario is scripted ('turns:') or a simulation ('persona:'), not both",
    ),
    (
        "bad dtmf",
        "",
        "      - dtmf: '12x'\n",
        "turn #0 'dtmf:' has invalid keypad entry 'x'",
    ),
]


@pytest.mark.parametrize(
    ("head", "turns", "message"), [c[1:] for c in CANNOT], ids=[c[0] for c in CANNOT]
)
def test_what_cannot_be_run_is_one_line_naming_file_scenario_and_turn(
    tmp_path: Path, head: str, turns: str, message: str
) -> None:
    path = scripted(tmp_path, turns, head=head)
    with pytest.raises(ScenarioError) as refused:
        load_evals_file(path, consent=UNTRUSTED)
    text = str(refused.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


BAD_FILES = [
    ("no name", "scenarios: [{name: s, turns: [{user: hi}]}]\n", "missing or invalid 'name:'"),
    ("not a list", "name: f\nscenarios: {name: s}\n", "'scenarios:' must be a non-empty list"),
    ("empty", "name: f\nscenarios: []\n", "'scenarios:' must be a non-empty list"),
    (
        "duplicates",
        "name: f\nscenarios: [{name: s, turns: [{user: a}]}, {name: s, turns: [{user: b}]}]\n",
        "duplicate scenario names: f/s",
    ),
    (
        "neither kind",
        "name: f\nscenarios: [{name: s}]\n",
        "a scenario needs 'turns:' (scripted) or 'persona:' (a simulation)",
    ),
    (
        "missing include",
        "name: f\njudge: !include nowhere.yaml\nscenarios: [{name: s, turns: [{user: a}]}]\n",
        "!include nowhere.yaml: no such file",
    ),
    (
        "include of itself",
        "name: f\njudge: !include f.yaml\nscenarios: [{name: s, turns: [{user: a}]}]\n",
        "!include f.yaml: more than 100 includes or 10 deep (does a file include itself?)",
    ),
    (
        "bad YAML in an include",
        "name: f\njudge: !include broken.yaml\nscenarios: [{name: s, turns: [{user: a}]}]\n",
        "not valid YAML: while parsing a flow mapping",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "eval: {service: ollama\n", "broken.yaml")
    path = write(tmp_path, text, "f.yaml")
    with pytest.raises(ScenarioError) as refused:
        load_scenarios(path)
    found = str(refused.value)
    assert found.startswith(f"{path}: ") and message in found
    assert "\n" not in found


# -- the command line ------------------------------------------------------------------------


async def test_test_gets_past_loading_and_fails_to_connect(tmp_path: Path) -> None:
    path = scripted(
        tmp_path,
        "      - user: hello\n        send_after: {delay_ms: 300}\n        expect:\n"
        "          - event: response\n          - event: function_call\n"
        "            name: lookup\n",
    )
    code, out, err = await cli(
        "test", str(path), "--uri", "ws://127.0.0.1:1/ws", "--no-transcripts"
    )
    assert code == 3, out + err
    assert f"note: {path}: f/s: turn 1: send_after delay_ms 300: said once the call is up" in err
    assert "FAIL f/s (pipecat, ws://127.0.0.1:1/ws)" in out
    assert "error: cannot connect to ws://127.0.0.1:1/ws - connection refused" in out


async def test_test_checks_the_judge_of_a_file_that_needs_one(every_kind: Path) -> None:
    code, _, err = await cli(
        "test", str(every_kind), "--uri", "ws://127.0.0.1:1/ws", "--no-transcripts"
    )
    assert code == 2, err
    assert err.strip() == (
        f"error: booking/every_kind: judge.eval: the LLM at {UNREACHABLE_JUDGE} is not "
        "reachable (Connect call failed ('127.0.0.1', 1)); start it (for Ollama: ollama "
        "serve) or set judge.eval.endpoint"
    )


async def test_a_folder_of_evals_files_and_their_fragments(with_includes: Path) -> None:
    code, _, err = await cli(
        "test", str(with_includes.parent), "--uri", "ws://127.0.0.1:1/ws", "--no-transcripts"
    )
    assert code == 2, err  # judge_llm.yaml was skipped: the judge is what stops it
    assert "interruption/text: judge.eval: the LLM at" in err and "not reachable" in err


async def test_test_without_uri_says_to_give_one(tmp_path: Path) -> None:
    path = scripted(tmp_path, "      - user: hello\n")
    code, _, err = await cli("test", str(path), "--no-transcripts")
    assert code == 2
    assert err.strip() == (
        "error: no uri for f/s: give --uri (or 'uri:' in a scenario file of ours; "
        "a pipecat.evals file names no bot)"
    )


async def test_against_a_bot_internal_events_are_skipped_never_passed(tmp_path: Path) -> None:
    path = scripted(
        tmp_path,
        "      - user: hello\n        expect:\n          - event: response\n"
        "            within_ms: 5000\n          - event: function_call\n"
        "            name: book_table\n",
    )
    junit = tmp_path / "junit.xml"
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        code, out, err = await cli(
            "test", str(path), "--uri", server.uri, "--no-transcripts", "--json",
            "--junit", str(junit), "--out-dir", str(tmp_path / "out"),
        )  # fmt: skip
    assert code == 0, out + err
    (turn,) = json.loads(out)["scenarios"][0]["turns"]
    assert turn["passed"] and turn["failures"] == [] and turn["response_ms"] is not None
    assert turn["notes"] == ["not observable from outside: function_call book_table"]
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "01 hello",
        "01 not observable from outside: function_call book_table",
    ]
    assert cases[0].find("skipped") is None and cases[0].find("failure") is None
    skipped = cases[1].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not observable from outside: function_call book_table"
