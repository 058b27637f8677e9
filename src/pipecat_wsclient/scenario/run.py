#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Run scenarios: one call per scenario, turn by turn, checked, recorded.

:func:`run_scenario` plays one :class:`~.model.Scenario` through a
:class:`~.call.VoiceCall`, transcribes the answers, checks every turn
(:func:`~.checks.check_turn`) and writes the stereo recording and the
timeline. :func:`run_suite` runs several, ``concurrency`` at a time.

Exit codes (:attr:`ScenarioResult.exit_code`): 0 every expectation held,
1 one failed, and the ``call`` command's codes (3-7) when the call could not
be made or was lost.

Example::

    result = await run_scenario(load_scenario(Path("hours.yaml")), out_dir=Path("out"))
    print(result.passed, [t.response_ms for t in result.turns])
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipecat_wsclient.audio.turns import Greeting
from pipecat_wsclient.audio.wav import check_wav
from pipecat_wsclient.caller.outcome import EXIT_OK, carrier_rules_error
from pipecat_wsclient.scenario.call import VoiceCall
from pipecat_wsclient.scenario.checks import check_turn
from pipecat_wsclient.scenario.judging import judge_turns
from pipecat_wsclient.scenario.model import Scenario, Turn
from pipecat_wsclient.scenario.results import CallFailed, TurnResult
from pipecat_wsclient.scenario.simulation import (
    SimulationOutcome,
    judge_simulation,
    run_simulation,
)
from pipecat_wsclient.scenario.speech import SpeechError, Synthesizer, Transcriber

EXIT_EXPECTATION = 1
"""A scenario ran but an expectation did not hold."""

NOT_PLAYED = "not played"
"""The note (and failure) of a turn the call ended before."""

NOT_TRANSCRIBED = "not transcribed"
"""The note of an answer left untranscribed because the run was stopped."""


@dataclass
class ScenarioResult:
    """What one scenario's call did and whether it passed."""

    name: str
    uri: str
    protocol: str
    path: str | None = None
    exit_code: int = EXIT_OK
    """0 passed, 1 an expectation failed, 3-7 the call failed (as ``call``)."""
    error: str | None = None
    """Why the call failed, if it did."""
    turns: list[TurnResult] = field(default_factory=list)
    connect_ms: float | None = None
    duration_secs: float = 0.0
    record: str | None = None
    """The stereo WAV (left: us, right: the bot), if written."""
    plot: str | None = None
    """The PNG timeline, if written."""
    greeting: TurnResult | None = None
    """The bot's speech before our first utterance (its start, length, transcript), if any."""
    carrier_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The carrier's rules the bot broke: per kind, ``count``, ``code`` and ``example``."""
    failures: list[str] = field(default_factory=list)
    """The call's own failed expectations (``carrier_errors_max``, a simulation's verdicts)."""
    notes: list[str] = field(default_factory=list)
    """What was done to reach the bot (its webhook's answer, a stream URL fixed)."""
    simulation: SimulationOutcome | None = None
    """A simulated caller's conversation and the judge's verdicts (``persona:`` scenarios)."""

    @property
    def passed(self) -> bool:
        """Whether the call was made and every expectation held."""
        return self.exit_code == EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for ``--json``)."""
        return {
            "name": self.name,
            "path": self.path,
            "uri": self.uri,
            "protocol": self.protocol,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "error": self.error,
            "connect_ms": self.connect_ms,
            "duration_secs": round(self.duration_secs, 3),
            "record": self.record,
            "plot": self.plot,
            "greeting": None if self.greeting is None else greeting_dict(self.greeting),
            "turns": [t.as_dict() for t in self.turns],
            "carrier_errors": self.carrier_errors,
            "failures": self.failures,
            "notes": self.notes,
            "simulation": None if self.simulation is None else self.simulation.as_dict(),
        }


def greeting_dict(greeting: TurnResult) -> dict[str, Any]:
    """The greeting's start (from the call's start and from connect), length and transcript."""
    return {
        "start_s": greeting.answer_start_s,
        "after_connect_ms": greeting.response_ms,
        "secs": greeting.answer_secs,
        "transcript": greeting.transcript,
    }


@dataclass
class RunOptions:
    """How to run scenarios (what the command line sets).

    Parameters:
        uri: Overrides every scenario's ``uri``.
        protocol: Overrides every scenario's ``protocol``.
        headers: Added to (and overriding) every scenario's headers.
        out_dir: Where recordings and timelines go (None: not written).
        transcripts: Transcribe every answer (False: only where an
            expectation needs it).
        synthesizer: Speaks ``say`` turns (default eSpeak NG with the scenario's voice).
        transcriber: Transcribes answers (default Whisper).
        cafile: CA bundle for ``wss://``.
        insecure: Skip certificate verification.
        stop_silence_ms: Overrides every scenario's ``stop_silence_ms``.
        auth_token: The carrier account's auth token, to sign a webhook's
            request and the stream's upgrade (None: the carrier's environment
            variable, e.g. ``TWILIO_AUTH_TOKEN``).
        strict: A call whose bot broke the carrier's rules fails
            (``carrier_errors_max: 0`` for scenarios that set none).
    """

    uri: str | None = None
    protocol: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    out_dir: Path | None = None
    transcripts: bool = True
    synthesizer: Synthesizer | None = None
    transcriber: Transcriber | None = None
    cafile: Path | None = None
    insecure: bool = False
    stop_silence_ms: float | None = None
    auth_token: str | None = field(default=None, repr=False)
    strict: bool = False


async def run_scenario(
    scenario: Scenario, options: RunOptions | None = None, *, stop: asyncio.Event | None = None
) -> ScenarioResult:
    """Make the scenario's call, check each turn, write its recording.

    Args:
        scenario: The call to make.
        options: Overrides and outputs.
        stop: Set it to hang up early (Ctrl-C, a Locust user stopped); the
            turns not played are reported as such.

    Returns:
        The result; it never raises for a failing bot (a failed call is
        ``exit_code`` 3-7 with ``error``).

    Raises:
        ValueError: If neither the scenario nor the options give a URI.
    """
    options = options or RunOptions()
    uri = options.uri or scenario.uri
    if not uri:
        raise ValueError(f"{scenario.name}: no uri (set 'uri:' in the file or pass --uri)")
    protocol = options.protocol or scenario.protocol
    synthesizer = options.synthesizer or _default_synthesizer(scenario)
    call = VoiceCall(
        uri,
        protocol=protocol,
        headers={**scenario.headers, **options.headers},
        sample_rate=scenario.sample_rate,
        synthesizer=synthesizer,
        transcriber=options.transcriber,
        answer_timeout=scenario.answer_timeout,
        answer_silence_ms=scenario.answer_silence_ms,
        stop_silence_ms=options.stop_silence_ms or scenario.stop_silence_ms,
        max_answer_secs=scenario.max_answer_secs,
        open_timeout=scenario.open_timeout,
        cafile=options.cafile,
        insecure=options.insecure,
        auth_token=options.auth_token,
    )
    result = ScenarioResult(
        name=scenario.name,
        uri=call.transport.session.uri,
        protocol=protocol,
        path=None if scenario.path is None else str(scenario.path),
    )
    started = time.monotonic()
    pairs: list[tuple[Turn, TurnResult]] = []
    outcome: SimulationOutcome | None = None
    stopper = asyncio.create_task(_hang_up_on(stop, call)) if stop is not None else None
    try:
        await call.start()
        result.uri = call.transport.session.uri  # the stream a webhook named, if any
        if call.connected_at is not None:
            result.connect_ms = round((call.connected_at - call.t0) * 1000, 1)
        if scenario.simulation is not None:
            outcome = await run_simulation(call, scenario.simulation)
        else:
            pairs = await _play_turns(call, scenario)
    except CallFailed as e:
        result.exit_code, result.error = e.exit_code, str(e)
    except SpeechError as e:
        result.exit_code, result.error = EXIT_EXPECTATION, str(e)
    finally:
        if stopper is not None:
            stopper.cancel()
        await call.close()
    failure = call.failure()
    if failure is not None and result.error is None:
        result.exit_code, result.error = failure.exit_code, str(failure)
    result.greeting = _greeting(call, call.measure())
    result.carrier_errors = call.caller.carrier_errors()
    result.notes = list(call.notes)
    if outcome is not None:
        await _judge_simulation(call, result, outcome, scenario)
        return _finish(call, result, scenario, options, started)
    transcripts = options.transcripts or any(t.expect.needs_transcript for t, _ in pairs)
    if stop is not None and stop.is_set():
        # Stopped (Ctrl-C, SIGTERM, a Locust user stopped): no transcription
        # holds the end up; a transcript expectation fails, saying why.
        for _, turn_result in pairs:
            if turn_result.answer_start_s is not None:
                turn_result.notes.append(f"{NOT_TRANSCRIBED}: stopped")
    else:
        if result.greeting is not None and transcripts:
            await _transcribe(call, [(None, result.greeting)], True)
        await _transcribe(call, pairs, options.transcripts)
    for turn, turn_result in pairs:
        turn_result.failures = check_turn(turn.expect, turn_result, kind=turn.kind)
        if turn_result.notes and turn_result.notes[0].startswith(NOT_PLAYED):
            turn_result.failures.insert(0, turn_result.notes[0])
    if not (stop is not None and stop.is_set()):
        await judge_turns(pairs, scenario.judge, result.greeting)
    result.turns = [r for _, r in pairs]
    return _finish(call, result, scenario, options, started)


async def _judge_simulation(
    call: VoiceCall, result: ScenarioResult, outcome: SimulationOutcome, scenario: Scenario
) -> None:
    """The simulated call's turns, its conversation and the judge's verdicts, into ``result``."""
    assert scenario.simulation is not None
    result.greeting = None  # the persona's "greeting" turn is in the turns
    await judge_simulation(outcome, scenario.simulation, ask_judge=result.exit_code == EXIT_OK)
    result.simulation = outcome
    result.turns = list(call.results)
    if result.exit_code == EXIT_OK:
        result.failures.extend(outcome.failures())


def _finish(
    call: VoiceCall,
    result: ScenarioResult,
    scenario: Scenario,
    options: RunOptions,
    started: float,
) -> ScenarioResult:
    """The checks on the whole call, the exit code, and the outputs."""
    limit = scenario.carrier_errors_max
    if options.strict and limit is None:
        limit = 0
    broken = sum(int(found.get("count", 0)) for found in result.carrier_errors.values())
    if limit is not None and broken > limit:
        result.failures.append(
            f"carrier_errors_max {limit}: {carrier_rules_error(result.carrier_errors)}"
        )
    if result.exit_code == EXIT_OK and (result.failures or not all(r.passed for r in result.turns)):
        result.exit_code = EXIT_EXPECTATION
    result.duration_secs = time.monotonic() - started
    if options.out_dir is not None:
        _write_outputs(call, result, options.out_dir)
    return result


async def _hang_up_on(stop: asyncio.Event, call: VoiceCall) -> None:
    await stop.wait()
    if call.started:
        await call.close()


def check_voices(scenarios: Iterable[Scenario]) -> None:
    """Make each voice the scenarios speak ``say`` lines in, once, before any call.

    Raises:
        ValueError: Naming the voice and the scenario, if eSpeak NG has no such
            voice or cannot be loaded.
    """
    from pipecat_wsclient.scenario.espeak import (
        DEFAULT_VOICE,
        EspeakUnavailable,
        espeak_synthesize,
    )

    voices: dict[str, str] = {}
    for scenario in scenarios:
        if any(turn.text for turn in scenario.turns):
            voices.setdefault(scenario.voice or DEFAULT_VOICE, scenario.name)
    for voice, name in voices.items():
        try:
            espeak_synthesize("hello", voice=voice)
        except ValueError:
            raise ValueError(
                f"{name}: voice {voice!r} cannot be made: eSpeak NG has no such voice "
                "(e.g. en-us, en, de, fr)"
            ) from None
        except EspeakUnavailable as e:
            raise ValueError(f"{name}: the say lines cannot be spoken: {e}") from None


def check_audio(scenarios: Iterable[Scenario]) -> None:
    """Check the header of every WAV file the scenarios play, before any call.

    Raises:
        ValueError: Naming the scenario, the turn and what is wrong with the
            file (:func:`~pipecat_wsclient.audio.wav.check_wav`), in one line.
    """
    for scenario in scenarios:
        for i, turn in enumerate(scenario.turns, start=1):
            if turn.audio is not None:
                try:
                    check_wav(turn.audio)
                except ValueError as e:
                    raise ValueError(f"{scenario.name}: turn {i}: {e}") from None


def _default_synthesizer(scenario: Scenario) -> Synthesizer | None:
    if scenario.voice is None:
        return None
    voice = scenario.voice

    def espeak():
        from pipecat_wsclient.scenario.espeak import EspeakTTSService

        return EspeakTTSService(voice=voice)

    return Synthesizer(espeak, cache_key=f"espeak:{voice}")


async def _play_turns(call: VoiceCall, scenario: Scenario) -> list[tuple[Turn, TurnResult]]:
    pairs: list[tuple[Turn, TurnResult]] = []
    turns = scenario.turns
    for i, turn in enumerate(turns):
        following = turns[i + 1] if i + 1 < len(turns) else None
        until = "start" if following is not None and following.kind == "barge_in" else "end"
        result = await _play(call, turn, until)
        if turn.expect.bot_hangs_up and not result.bot_hung_up:
            result.bot_hung_up = await call.wait_for_hangup(
                turn.answer_timeout or scenario.answer_timeout
            )
        pairs.append((turn, result))
        if call.ended:
            rest = [t for t in turns[i + 1 :] if t.kind != "hangup"]
            why = call.failure() or ("we hung up" if call.hung_up_by_us else "the bot hung up")
            for skipped in rest:
                # A turn that could not be played fails, whatever it expected.
                missed = TurnResult(skipped.label, skipped.kind, notes=[f"{NOT_PLAYED}: {why}"])
                pairs.append((skipped, missed))
            break
    return pairs


async def _play(call: VoiceCall, turn: Turn, until: Any) -> TurnResult:
    label = turn.label
    timeout = turn.answer_timeout
    if turn.kind == "say":
        assert turn.text is not None
        return await call.say(turn.text, timeout=timeout, until=until, label=label)
    if turn.kind == "play":
        assert turn.audio is not None
        return await call.play(turn.audio, timeout=timeout, until=until, label=label)
    if turn.kind == "barge_in":
        return await call.barge_in(
            turn.after_ms, say=turn.text, play=turn.audio, timeout=timeout, label=label, reask=False
        )
    if turn.kind == "dtmf":
        return await call.dtmf(turn.digits, timeout=timeout, until=until, label=label)
    if turn.kind == "listen":
        return await call.listen(turn.seconds, until=until, label=label)
    if turn.kind == "wait":
        return await call.wait(turn.seconds, label=label)
    return await call.hangup()


def _greeting(call: VoiceCall, greeting: Greeting | None) -> TurnResult | None:
    """The greeting as a turn of its own: its start, end and length, from the call's start."""
    if greeting is None:
        return None
    start, end = round(greeting.onset - call.t0, 3), round(greeting.end - call.t0, 3)
    result = TurnResult("greeting", "greeting", started_s=0.0)
    result.answer_start_s, result.answer_end_s = start, end
    result.answer_secs = round(end - start, 3)
    if call.connected_at is not None:
        result.response_ms = round((greeting.onset - call.connected_at) * 1000, 1)
    return result


async def _transcribe(
    call: VoiceCall, pairs: Sequence[tuple[Turn | None, TurnResult]], every: bool
) -> None:
    for turn, result in pairs:
        wanted = every or turn is None or turn.expect.needs_transcript
        if result.answer_start_s is None or not wanted:
            continue
        try:
            await call.transcribe(result)
        except SpeechError as e:
            result.notes.append(f"no transcript: {e}")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "scenario"


def _write_outputs(call: VoiceCall, result: ScenarioResult, out_dir: Path) -> None:
    from pipecat_wsclient.caller.plot import plot_call

    rendered = call.render()
    if rendered is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, left, right = rendered
    stem = out_dir / _slug(result.name)
    wav, png = stem.with_suffix(".wav"), stem.with_suffix(".png")
    call.write_recording(wav, rendered)
    offset = call.t0 - t0  # turn times are from call.t0; the plot's from t0

    def times(pick: Callable[[TurnResult], float | None]) -> list[float]:
        return [v + offset for v in map(pick, result.turns) if v is not None]

    markers = {
        "speech_end": times(lambda r: r.speech_end_s),
        "first_response": times(lambda r: r.answer_start_s),
        "barge_in": times(lambda r: r.speech_start_s if r.kind == "barge_in" else None),
        "dtmf": times(lambda r: r.started_s if r.kind == "dtmf" else None),
        "clear": [t - t0 for t, kind in call.carrier_events if kind == "clear"],
    }
    plot_call(png, left, right, call.rate, markers)
    result.record, result.plot = str(wav), str(png)


async def run_suite(
    scenarios: list[Scenario],
    options: RunOptions | None = None,
    *,
    concurrency: int = 1,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Run scenarios, ``concurrency`` calls at a time; results in the scenarios' order.

    One synthesizer and one transcriber serve them all (transcriptions run
    one at a time).
    """
    options = options or RunOptions()
    if options.transcriber is None:
        options.transcriber = Transcriber()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(scenario: Scenario) -> ScenarioResult:
        async with gate:
            try:
                result = await run_scenario(scenario, options)
            except ValueError as e:
                result = ScenarioResult(scenario.name, "", scenario.protocol, exit_code=2)
                result.error = str(e)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(s) for s in scenarios)))


def suite_exit_code(results: list[ScenarioResult]) -> int:
    """0 if all passed; a call failure's code if one could not call; else 1."""
    codes = [r.exit_code for r in results if r.exit_code not in (EXIT_OK, EXIT_EXPECTATION)]
    if codes:
        return codes[0]
    return EXIT_EXPECTATION if any(not r.passed for r in results) else EXIT_OK
