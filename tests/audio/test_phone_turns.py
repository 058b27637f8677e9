"""The turn engine (audio.turns): live and final figures, on synthetic PCM with a fake clock.

"Speech" is a 440 Hz tone at -10 dBFS, silence zeros, 16-bit mono at 8 kHz.
The plain tests build each side as 20 ms windows (voiced or not) and feed
them in chunks from t=0, polling at each chunk's end, as the phone does
while a call goes.

The generated test attacks the engine's promises on speech of any length,
fed in chunks of any size that arrive late at random, polled at random
times: (1) what it reports live is what it reports in the end; (2) nothing
is reported before it happened; (3) the final figures are those of the
rules ``call`` always applied to the whole recording (the reference below:
the offline ``turns``/``barge_ins`` the engine replaced, with the greeting,
overlap and underrun rules beside them).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.audio.levels import (
    MIN_SILENCE_SECS,
    MIN_SPEECH_SECS,
    SPEECH_THRESHOLD_DB,
    STOP_SILENCE_SECS,
    WINDOW_SECS,
    window_levels,
)
from pipecat_wsclient.audio.track import Track, count_underruns
from pipecat_wsclient.audio.turns import (
    ANSWER_GAP_SECS,
    BargeIn,
    Greeting,
    LiveTurns,
    TurnEngine,
    TurnUpdate,
    replay,
)
from pipecat_wsclient.audio.wav import float_to_pcm

RATE = 8000
W = 0.02
AMPLITUDE = math.sqrt(2) * 10 ** (-10 / 20)


def tone(samples: int) -> bytes:
    return float_to_pcm(AMPLITUDE * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE))


VOICED = tone(int(RATE * W))
SILENT = bytes(len(VOICED))

Update = TurnUpdate | BargeIn


def windows(*runs: tuple[bool, float]) -> list[bool]:
    """(voiced, seconds) runs → one flag per 20 ms window."""
    flags: list[bool] = []
    for voiced, seconds in runs:
        flags += [voiced] * round(seconds / W)
    return flags


def feed(
    ours: list[bool], theirs: list[bool], clears: tuple[float, ...] = (), chunk: int = 1
) -> tuple[TurnEngine, list[tuple[float, Update]]]:
    """Play both sides from t=0 in chunks of ``chunk`` windows, polling as it goes, then finish."""
    live = LiveTurns(RATE)
    n = max(len(ours), len(theirs))
    ours = ours + [False] * (n - len(ours))
    theirs = theirs + [False] * (n - len(theirs))
    pending = sorted(clears)
    seen: list[tuple[float, Update]] = []
    for i in range(0, n, chunk):
        t = i * W
        now = (i + chunk) * W
        while pending and pending[0] <= now:
            live.add_clear(pending.pop(0))
        live.add_ours(b"".join(VOICED if v else SILENT for v in ours[i : i + chunk]), t)
        live.add_theirs(b"".join(VOICED if v else SILENT for v in theirs[i : i + chunk]), t)
        seen += [(now, replace(u)) for u in live.poll(now)]  # as it was when reported
    for t in pending:
        live.add_clear(t)
    seen += [(n * W + 60, replace(u)) for u in live.poll(n * W + 60)]
    seen += [(math.inf, replace(u)) for u in live.finish()]
    return live, seen


def test_a_turn_is_reported_when_our_utterance_ends_then_answered() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 1.5), (True, 1.0))
    live, seen = feed(ours, theirs)
    (turn,) = live.turns
    assert turn.utterance_end == pytest.approx(1.0)
    assert turn.latency == pytest.approx(0.5)
    assert turn.overlap is None
    # First reported (no answer) once 0.3 s of silence confirmed the end...
    first_at, first = seen[0]
    assert isinstance(first, TurnUpdate) and first_at == pytest.approx(1.3)
    assert first.answer_start is None
    # ...then again once the answer had gone on long enough (80 ms) not to be a click.
    assert [round(at, 2) for at, u in seen if isinstance(u, TurnUpdate)] == [1.3, 1.58]


def test_speech_the_bot_began_before_we_ended_is_no_answer_but_an_overlap() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 0.8), (True, 0.5), (False, 0.5), (True, 0.5))
    live, seen = feed(ours, theirs)
    (turn,) = live.turns
    assert turn.answer_start == pytest.approx(1.8)  # the latency is still to the next answer
    assert turn.overlap_start == pytest.approx(0.8)
    assert turn.overlap == pytest.approx(0.2)
    assert seen[0][1].overlap_start == pytest.approx(0.8)  # known with the turn


def test_the_bot_starting_with_us_overlaps_but_talking_before_us_does_not() -> None:
    live, _ = feed(windows((False, 0.5), (True, 1.0)), windows((False, 0.5), (True, 0.3)))
    assert live.turns[0].overlap == pytest.approx(1.0)
    assert live.barge_ins == []
    live, _ = feed(windows((False, 0.5), (True, 1.0)), windows((False, 0.3), (True, 0.5)))
    assert live.turns[0].overlap is None  # we barged in instead
    assert [b.onset for b in live.barge_ins] == [pytest.approx(0.5)]


def test_a_click_is_no_answer() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 1.2), (True, 0.04), (False, 0.4), (True, 0.4))
    live, _ = feed(ours, theirs)
    assert live.turns[0].answer_start == pytest.approx(1.64)


def test_words_the_bot_goes_on_with_after_we_spoke_over_it_are_no_answer() -> None:
    # The bot talks from 0.2 s; we talk over it from 1.0 to 2.0; it goes on
    # (words 160 ms apart) until 3.02, is quiet 0.6 s, then answers us at 3.62.
    theirs = windows(
        (False, 0.2), (True, 1.5), (False, 0.16), (True, 0.5), (False, 0.16), (True, 0.5),
        (False, 0.6), (True, 0.5),
    )  # fmt: skip
    ours = windows((False, 1.0), (True, 1.0))
    live, _ = feed(ours, theirs)
    (turn,) = live.turns
    assert turn.overlap_start is None  # it was talking when we began
    assert turn.answer_start == pytest.approx(3.62)  # not its next word at 2.36
    assert [b.stop for b in live.barge_ins] == [pytest.approx(3.02)]


def test_a_quick_reply_between_the_bots_sentences_is_answered() -> None:
    # The greeting ends at 1.0; we say "yes" from 1.1 to 1.3 (in a pause shorter
    # than the stop silence); the bot answers at 1.44: it was silent all along.
    theirs = windows((False, 0.2), (True, 0.8), (False, 0.44), (True, 0.6))
    ours = windows((False, 1.1), (True, 0.2))
    live, _ = feed(ours, theirs)
    assert live.greeting == Greeting(pytest.approx(0.2), pytest.approx(1.0))
    assert [t.answer_start for t in live.turns] == [pytest.approx(1.44)]


def test_an_echo_overlaps_each_utterance_and_answers_none() -> None:
    # Each utterance comes back 0.2 s after it began: turn 1's overlap is its
    # own echo, and the echo of utterance 2 is not turn 1's answer.
    ours = windows((True, 1.0), (False, 1.0), (True, 1.0))
    theirs = windows((False, 0.2), (True, 1.0), (False, 1.0), (True, 1.0))
    live, _ = feed(ours, theirs)
    assert [(t.overlap_start, t.answer_start) for t in live.turns] == [
        (pytest.approx(0.2), None),
        (pytest.approx(2.2), None),
    ]


def test_a_turn_left_unanswered_before_our_next_utterance_begins_stays_unanswered() -> None:
    ours = windows((True, 0.5), (False, 1.0), (True, 0.5))
    theirs = windows((False, 2.2), (True, 0.5))
    live, _ = feed(ours, theirs)
    assert [t.answer_start for t in live.turns] == [None, pytest.approx(2.2)]


def test_a_barge_in_reports_the_bots_reaction_and_its_clear() -> None:
    theirs = windows((False, 1.0), (True, 3.0))  # the bot talks from 1.0 to 4.0...
    theirs = theirs[: round(2.4 / W)]  # ...but stops at 2.4 (it heard us) and clears
    ours = windows((False, 2.0), (True, 1.0))  # we speak from 2.0
    live, seen = feed(ours, theirs, clears=(2.4,))
    (barge_in,) = live.barge_ins
    assert barge_in.onset == pytest.approx(2.0)
    assert barge_in.reaction == pytest.approx(0.4)
    assert barge_in.clear == pytest.approx(2.4)
    # Known with the clear (its window played), not after a silence or at the end.
    (at,) = [at for at, u in seen if isinstance(u, BargeIn)]
    assert at == pytest.approx(2.42)


def test_talk_going_on_at_our_onset_after_a_clear_just_before_it_is_what_we_talked_over() -> None:
    # Found by the long profile: the bot clears 40 ms before our onset (within
    # the clear's slack) but goes on talking over us until 2.6: it stopped
    # then, not at the clear.
    theirs = windows((False, 1.0), (True, 1.6))
    ours = windows((False, 2.0), (True, 1.0))
    live, _ = feed(ours, theirs, clears=(1.96,))
    assert [(b.onset, b.stop) for b in live.barge_ins] == [(pytest.approx(2.0), pytest.approx(2.6))]


def test_without_a_clear_the_stop_needs_the_stop_silence_and_is_dated_at_its_start() -> None:
    theirs = windows((False, 1.0), (True, 1.4))  # stops at 2.4, no clear (raw protocols)
    ours = windows((False, 2.0), (True, 1.0))
    live, seen = feed(ours, theirs)
    (barge_in,) = live.barge_ins
    assert barge_in.stop == pytest.approx(2.4)
    (at,) = [at for at, u in seen if isinstance(u, BargeIn)]
    assert at == pytest.approx(2.4 + STOP_SILENCE_SECS)


@pytest.mark.parametrize("pause", [0.04, 0.1, 0.2, 0.38])
def test_a_pause_between_the_bots_words_is_not_its_stop(pause: float) -> None:
    # The phantom barge-in: the bot went on after a pause; it stopped at 3.0.
    theirs = windows((False, 1.0), (True, 1.2), (False, pause), (True, 0.8 - pause))
    ours = windows((False, 1.5), (True, 1.0))
    live, _ = feed(ours, theirs)
    assert [(b.onset, b.stop) for b in live.barge_ins] == [(pytest.approx(1.5), pytest.approx(3.0))]


def test_the_stop_silence_is_an_option() -> None:
    theirs = windows((False, 1.0), (True, 1.2), (False, 0.3), (True, 0.5))
    ours = windows((False, 1.5), (True, 1.0))
    live = TurnEngine(RATE, stop_silence=0.2)
    for i, (o, t) in enumerate(zip(ours, theirs + [False] * 50, strict=False)):
        live.add_ours(VOICED if o else SILENT, i * W)
        live.add_theirs(VOICED if t else SILENT, i * W)
    live.finish()
    assert [b.stop for b in live.barge_ins] == [pytest.approx(2.2)]


def test_a_clear_after_the_barge_in_was_reported_reports_it_again() -> None:
    theirs = windows((False, 1.0), (True, 1.4))
    ours = windows((False, 2.0), (True, 1.0))
    _, seen = feed(ours, theirs, clears=(3.0,))
    (first_at, first), (again_at, again) = [(at, u) for at, u in seen if isinstance(u, BargeIn)]
    assert first_at == pytest.approx(2.9) and first.clear is None
    assert 3.0 <= again_at < 3.04 and again.clear == pytest.approx(3.0)


def test_speaking_right_after_the_bot_is_not_a_barge_in() -> None:
    theirs = windows((True, 1.0))
    ours = windows((False, 1.1), (True, 0.5))
    live, _ = feed(ours, theirs)
    assert live.barge_ins == []


# -- greeting ------------------------------------------------------------------


def test_the_greeting_is_the_bots_speech_before_our_first_utterance() -> None:
    # Two sentences (a 0.3 s pause between them), then we answer; then more of the bot.
    theirs = windows((False, 0.2), (True, 0.8), (False, 0.3), (True, 0.7), (False, 1.5), (True, 1))
    ours = windows((False, 2.5), (True, 0.6))
    live = LiveTurns(RATE)
    for i, (o, t) in enumerate(zip(ours + [False] * 100, theirs, strict=False)):
        live.add_ours(VOICED if o else SILENT, i * W)
        live.add_theirs(VOICED if t else SILENT, i * W)
        live.poll((i + 1) * W)
        if (i + 1) * W < 2.58 - 1e-9:  # our utterance is one once 80 ms long
            assert live.greeting is None
        else:
            assert live.greeting == Greeting(pytest.approx(0.2), pytest.approx(2.0))


def test_we_barge_into_the_greeting_it_ends_when_the_bot_stops() -> None:
    live, _ = feed(windows((False, 0.6), (True, 0.5)), windows((False, 0.2), (True, 0.8)))
    assert live.greeting == Greeting(pytest.approx(0.2), pytest.approx(1.0))
    assert [b.stop for b in live.barge_ins] == [pytest.approx(1.0)]


def test_no_greeting_when_we_speak_first_and_all_of_it_when_we_never_do() -> None:
    live, _ = feed(windows((True, 0.5)), windows((False, 1.0), (True, 0.5)))
    assert live.greeting is None
    live = LiveTurns(RATE)
    live.add_theirs(SILENT * 10 + VOICED * 25 + SILENT * 20 + VOICED * 10, 0.0)
    live.add_ours(SILENT * 100, 0.0)
    live.poll(10.0)
    assert live.greeting is None  # we may still speak
    live.finish()
    assert live.greeting == Greeting(pytest.approx(0.2), pytest.approx(1.3))


# -- the end of the audio --------------------------------------------------------


def test_a_last_part_window_counts_only_if_the_call_goes_on() -> None:
    """``call`` never judged a trailing part window; live, it waits to see if one follows.

    Judged, the part window's sound ends the utterance where it ends (0.51), not
    at the window's end.
    """
    for goes_on in (False, True):
        live = LiveTurns(RATE)
        live.add_ours(VOICED * 25 + tone(80), 0.0)  # speech to 0.51: its last 10 ms a part window
        assert live.poll(5.0) == []
        if goes_on:
            live.add_ours(SILENT, 5.0)
        (turn,) = live.finish()
        assert isinstance(turn, TurnUpdate)
        assert turn.utterance_end == pytest.approx(0.51 if goes_on else 0.5, abs=1e-6)


def test_a_poll_before_any_audio_reports_nothing() -> None:
    live = LiveTurns(RATE)
    assert live.poll(3.0) == [] and live.finish() == []
    assert (live.turns, live.barge_ins, live.greeting, live.underruns) == ([], [], None, 0)


# -- underruns -------------------------------------------------------------------


def test_underruns_are_the_bots_audio_arriving_20_to_250_ms_after_it_ran_out() -> None:
    heard = Track(RATE)
    live = LiveTurns(RATE)
    # On time, 10 ms late (no), 30 ms late (yes), 250 ms late (yes), 0.4 s late (a pause).
    arrivals = [0.0, 0.02, 0.05, 0.10, 0.37, 0.79]
    for arrival in arrivals:
        start = heard.add(arrival, VOICED)
        live.add_theirs(VOICED, start, arrival=arrival)
    assert live.underruns == count_underruns(heard) == 2
    live.add_theirs(VOICED, 1.0)  # without an arrival time: not judged
    assert live.underruns == 2


# -- generated: live figures are the final ones, which are the reference's ------


def speech_segments(
    samples: np.ndarray, min_silence: float, min_speech: float = MIN_SPEECH_SECS
) -> list[tuple[float, float]]:
    """The reference: utterances by energy in whole rendered audio, as ``call`` found them."""
    voiced = window_levels(samples, RATE) > SPEECH_THRESHOLD_DB
    segments: list[tuple[float, float]] = []
    start: int | None = None
    last = -1
    gap = round(min_silence / WINDOW_SECS)
    for i, v in enumerate(voiced):
        if not v:
            continue
        if start is None:
            start = i
        elif i - last > gap:
            segments.append((start * WINDOW_SECS, (last + 1) * WINDOW_SECS))
            start = i
        last = i
    if start is not None:
        segments.append((start * WINDOW_SECS, (last + 1) * WINDOW_SECS))
    return [(s, e) for s, e in segments if e - s >= min_speech - 1e-9]


def talks(
    samples: np.ndarray, t0: float, clears: list[float]
) -> list[tuple[float, float, float | None]]:
    """The bot's talk: voiced windows joined across pauses under the stop silence, cut by clears.

    ``(start, end, cut)`` from t0; ``cut``: the clear that ended it. A clear cuts
    the talk before the first window starting at or after it, if the talk is
    still going on there (its last voiced window at most the stop silence before).
    """
    voiced = np.flatnonzero(window_levels(samples, RATE) > SPEECH_THRESHOLD_DB).tolist()
    gap = round(STOP_SILENCE_SECS / WINDOW_SECS)
    cut_at: dict[int, float] = {}
    for c in clears:
        k = math.ceil((c - t0 - 1e-9) / WINDOW_SECS)
        cut_at[k] = max(cut_at.get(k, c), c)
    out: list[tuple[float, float, float | None]] = []
    if not voiced:
        return out
    start = voiced[0]
    for last, nxt in zip(voiced, [*voiced[1:], None], strict=True):
        cut = next(
            (
                cut_at[k]
                for k in sorted(cut_at)
                if last < k <= last + gap and (nxt is None or k <= nxt)
            ),
            None,
        )
        if cut is not None or nxt is None or nxt - last > gap:
            out.append((start * WINDOW_SECS, (last + 1) * WINDOW_SECS, cut))
            start = nxt
    return [t for t in out if t[1] - t[0] >= MIN_SPEECH_SECS - 1e-9]


def onset_in(samples: np.ndarray, at: float) -> float:
    """A voiced window's start ``at`` refined: where its first loud eighth begins."""
    k, n = round(at / WINDOW_SECS), round(RATE * WINDOW_SECS)
    bounds = [n * j // 8 for j in range(9)]
    for lo, hi in itertools.pairwise(bounds):
        part = samples[k * n + lo : k * n + hi].astype(np.float64)
        if np.mean(part**2) > (10 ** (SPEECH_THRESHOLD_DB / 20)) ** 2:
            return k * WINDOW_SECS + lo / RATE
    raise AssertionError("a voiced window with no loud part")


def end_in(samples: np.ndarray, at: float) -> float:
    """A stretch's end ``at`` (a window's end) refined: where its last loud eighth ends."""
    k, n = round(at / WINDOW_SECS) - 1, round(RATE * WINDOW_SECS)
    bounds = [n * j // 8 for j in range(9)]
    for lo, hi in reversed(list(itertools.pairwise(bounds))):
        part = samples[k * n + lo : k * n + hi].astype(np.float64)
        if np.mean(part**2) > (10 ** (SPEECH_THRESHOLD_DB / 20)) ** 2:
            return k * WINDOW_SECS + hi / RATE
    raise AssertionError("a voiced window with no loud part")


@dataclass
class Reference:
    turns: list[tuple[float, float, float | None, float | None]]  # start, end, answer, overlap
    barge_ins: list[tuple[float, float, float | None]]  # onset, stop (from t0), clear
    greeting: tuple[float, float] | None
    underruns: int


def reference(sent: Track, heard: Track, clears: list[float]) -> Reference:
    """The figures from the whole recording: both tracks rendered, then the rules applied."""
    t0 = min(track.chunks[0][0] for track in (sent, heard) if track.chunks)
    end = max(sent.end, heard.end)
    left, right = sent.render(t0, end - t0), heard.render(t0, end - t0)
    ours = speech_segments(left, MIN_SILENCE_SECS)
    answers = speech_segments(right, ANSWER_GAP_SECS)
    talk_starts = {round(a / WINDOW_SECS) for a, _, _ in talks(right, t0, clears)}

    def fresh(i: int, since: float) -> bool:
        """Silent from our onset until answers[i], or a new talk begins with it."""
        if i == 0 or answers[i - 1][1] <= since + 1e-9:
            return True
        return round(answers[i][0] / WINDOW_SECS) in talk_starts

    turns = []
    for i, (start, stop) in enumerate(ours):
        limit = ours[i + 1][0] if i + 1 < len(ours) else math.inf
        answer = next(
            (a for j, (a, _) in enumerate(answers) if stop <= a < limit and fresh(j, start)), None
        )
        overlap = next(
            (a for j, (a, _) in enumerate(answers) if start <= a < stop and fresh(j, start)), None
        )
        turns.append(
            (
                t0 + onset_in(left, start),
                t0 + end_in(left, stop),
                None if answer is None else t0 + onset_in(right, answer),
                None if overlap is None else t0 + onset_in(right, overlap),
            )
        )
    barge_ins = []
    for start, _ in ours:
        before = [a for a in talks(right, t0, clears) if a[0] < start - 1e-9]
        over = before[-1] if before else None
        onset = onset_in(left, start)
        if over is not None and (
            over[1] > start + 1e-9 or (over[2] is not None and over[2] >= t0 + onset - 0.05)
        ):
            clear = next((t for t in clears if t >= t0 + onset - 0.05), None)
            barge_ins.append((onset, max(onset, end_in(right, over[1])), clear))
    first = ours[0][0] if ours else math.inf
    said = [a for a in answers if a[0] < first]
    greeting = (t0 + onset_in(right, said[0][0]), t0 + end_in(right, said[-1][1])) if said else None
    underruns = 0
    for i in range(1, len(heard.chunks)):
        start, pcm = heard.chunks[i - 1]
        if 0.02 <= heard.arrivals[i] - (start + len(pcm) / (2 * RATE)) <= 0.25:
            underruns += 1
    return Reference(turns, barge_ins, greeting, underruns)


def figures(engine: TurnEngine) -> Reference:
    t0 = engine.origin or 0.0
    return Reference(
        [
            (t.utterance_start, t.utterance_end, t.answer_start, t.overlap_start)
            for t in engine.turns
        ],
        [(b.onset - t0, b.stop - t0, b.clear) for b in engine.barge_ins],
        None if engine.greeting is None else (engine.greeting.onset, engine.greeting.end),
        engine.underruns,
    )


Runs = list[tuple[bool, int]]
"""A side's audio: (voiced, samples) runs of tone or silence."""

# Random sides: runs of any length (a few samples to 1.2 s), so that speech
# starts and ends anywhere in a window; pauses around the 0.1 s and 0.3 s
# that split the bot's and our speech are frequent.
run_samples = st.one_of(
    st.integers(1, 200), st.integers(600, 1000), st.integers(2200, 2600), st.integers(1, 9600)
)
side = st.lists(st.tuples(st.booleans(), run_samples), min_size=1, max_size=10)
random_sides = st.tuples(side, side)


def runs_of(spans: list[tuple[int, int]]) -> Runs:
    """Voiced sample spans (overlapping or not) → runs from sample 0."""
    runs: Runs = []
    cursor = 0
    for a, b in sorted(spans):
        if a > cursor:
            runs.append((False, a - cursor))
        if b > max(a, cursor):
            runs.append((True, b - max(a, cursor)))
        cursor = max(cursor, b)
    return runs or [(False, 1)]


@st.composite
def dialogs(draw: st.DrawFn) -> tuple[Runs, Runs]:
    """A conversation: we speak, the bot answers (late, early or over us), and so on."""
    ms = lambda lo, hi: st.integers(lo * RATE // 1000, hi * RATE // 1000)  # noqa: E731
    t = draw(ms(0, 1500), label="first words")
    greeting = draw(ms(0, 2000), label="greeting")
    ours: list[tuple[int, int]] = []
    theirs: list[tuple[int, int]] = [(0, greeting)]
    for _ in range(draw(st.integers(1, 5), label="exchanges")):
        said = draw(ms(10, 1500), label="utterance")
        ours.append((t, t + said))
        if draw(st.booleans(), label="we pause"):  # a short pause inside the utterance
            ours.append((t + said + draw(ms(0, 400), label="pause"), t + said + 2000))
        answer = t + said + draw(ms(-600, 1200), label="latency")
        length = draw(ms(10, 2500), label="answer")
        theirs.append((answer, answer + length))
        if draw(st.booleans(), label="bot pauses"):  # two sentences
            resume = answer + length + draw(ms(0, 400), label="bot pause")
            theirs.append((resume, resume + draw(ms(10, 1500), label="more")))
        t = max(theirs[-1][1], 0) + draw(ms(-1500, 1500), label="next")  # < 0: we barge in
        t = max(t, ours[-1][1] + 1)
    return runs_of(ours), runs_of([(max(a, 0), b) for a, b in theirs if b > max(a, 0)])


late = st.one_of(st.just(0.0), st.sampled_from([0.01, 0.02, 0.1, 0.25, 0.3]), st.floats(0, 0.4))
chunk_samples = st.one_of(st.integers(1, 160), st.integers(160, 2400))


def play(data: st.DataObject, runs: list[tuple[bool, int]], t: float) -> Track:
    """A side's audio cut in chunks of random sizes, each arriving on time or late.

    The sizes and the lateness are drawn as short patterns, repeated over the
    chunks: uneven enough, and few draws.
    """
    pcm = b"".join(tone(n) if voiced else bytes(2 * n) for voiced, n in runs)
    sizes = data.draw(st.lists(chunk_samples, min_size=1, max_size=6), label="chunk sizes")
    lates = data.draw(st.lists(late, min_size=1, max_size=6), label="lateness")
    track = Track(RATE)
    arrival, i, j = t, 0, 0
    while i < len(pcm):
        chunk = pcm[i : i + 2 * sizes[j % len(sizes)]]
        arrival = max(arrival, t + lates[j % len(lates)])
        track.add(arrival, chunk)
        t += len(chunk) / (2 * RATE)
        i += len(chunk)
        j += 1
    return track


@pytest.mark.generated
@pytest.mark.timeout(1800)  # the long profile
@given(
    sides=st.one_of(random_sides, dialogs()),
    start=st.sampled_from([0.0, 1234.5678]),
    lead=st.floats(-1.0, 1.0),
    clears=st.lists(st.floats(0, 12), max_size=3),
    data=st.data(),
)
@budget(ci=300, long=20_000)
def test_the_live_figures_are_the_final_ones_and_those_of_the_whole_call(
    sides, start, lead, clears, data
) -> None:
    ours, theirs = sides
    sent = play(data, ours, start + max(0.0, -lead))
    heard = play(data, theirs, start + max(0.0, lead))
    clear_times = sorted(start + c for c in clears)
    arrivals = sorted(
        [(a, 0, s, pcm) for a, (s, pcm) in zip(sent.arrivals, sent.chunks, strict=True)]
        + [(a, 1, s, pcm) for a, (s, pcm) in zip(heard.arrivals, heard.chunks, strict=True)],
        key=lambda e: (e[0], e[1]),
    )

    # The call as it goes: chunks added when they arrive, polls in between.
    live = TurnEngine(RATE)
    seen: list[tuple[float, Update]] = []
    greeted: tuple[float, Greeting] | None = None
    clock = start
    pending = list(clear_times)

    def poll(now: float) -> None:
        nonlocal greeted
        while pending and pending[0] <= now:
            live.add_clear(pending.pop(0))
        seen.extend((now, replace(u)) for u in live.poll(now))
        if greeted is None and live.greeting is not None:
            greeted = (now, replace(live.greeting))

    # Before each chunk arrives: no poll (None), or one part of the way from the last time.
    polls = data.draw(st.lists(st.none() | st.floats(0, 1), min_size=1, max_size=7), label="polls")
    for i, (arrival, who, play_at, pcm) in enumerate(arrivals):
        part = polls[i % len(polls)]
        if part is not None:
            clock += part * (arrival - clock)
            poll(clock)
        clock = arrival
        if who == 0:
            live.add_ours(pcm, play_at)
        else:
            live.add_theirs(pcm, play_at, arrival=arrival)
    for _ in range(data.draw(st.integers(0, 3), label="polls after")):
        clock += data.draw(st.floats(0, 1.5), label="later")
        poll(clock)
    for at in pending:
        live.add_clear(at)
    seen.extend((math.inf, replace(u)) for u in live.finish())

    # (3) The final figures are the whole call's, and those `call` reports (replay).
    final = figures(live)
    expected = reference(sent, heard, clear_times)
    assert final.turns == [
        tuple(None if t is None else pytest.approx(t, abs=1e-9) for t in turn)
        for turn in expected.turns
    ]
    assert final.barge_ins == [
        (pytest.approx(onset, abs=1e-9), pytest.approx(stop, abs=1e-9), clear)
        for onset, stop, clear in expected.barge_ins
    ]
    assert final.greeting == (
        None
        if expected.greeting is None
        else tuple(pytest.approx(t, abs=1e-9) for t in expected.greeting)
    )
    assert final.underruns == expected.underruns
    assert figures(replay(sent, heard, clear_times)) == final

    # (1) What was reported live is what stands in the end; everything was reported.
    for _, update in seen:
        if isinstance(update, TurnUpdate):
            turn = live.turns[update.n - 1]
            assert (update.utterance_start, update.utterance_end, update.overlap_start) == (
                turn.utterance_start,
                turn.utterance_end,
                turn.overlap_start,
            )
            assert update.answer_start in (None, turn.answer_start)
        else:
            barge_in = live.barge_ins[update.n - 1]
            assert (update.onset, update.stop) == (barge_in.onset, barge_in.stop)
            assert update.clear in (None, barge_in.clear)
    reported = {(type(u), u.n) for _, u in seen}
    assert reported == {(TurnUpdate, t.n) for t in live.turns} | {
        (BargeIn, b.n) for b in live.barge_ins
    }
    answered = {u.n for _, u in seen if isinstance(u, TurnUpdate) and u.answer_start is not None}
    assert answered == {t.n for t in live.turns if t.answer_start is not None}

    # (2) Nothing is reported before it happened.
    eps = 1e-6
    for at, update in seen:
        if at == math.inf:
            continue
        if isinstance(update, TurnUpdate):
            assert at >= update.utterance_end + MIN_SILENCE_SECS - eps
            if update.answer_start is not None:
                # Its onset is dated inside its first window: the windows of
                # min_speech have played, the sound in them a part window less.
                assert at >= update.answer_start + MIN_SPEECH_SECS - WINDOW_SECS - eps
        elif update.clear is None:  # no clear: the stop needs the stop silence after it
            assert at >= update.stop + STOP_SILENCE_SECS - eps
        else:
            assert at >= update.stop - eps
    if greeted is not None:
        at, greeting = greeted
        assert greeting == live.greeting
        assert at >= greeting.end + ANSWER_GAP_SECS - eps


# -- voice onsets (the mouth-to-bot timing rule) ---------------------------------


def test_voice_onsets_need_half_a_second_of_quiet_before_them() -> None:
    from pipecat_wsclient.audio.activity import VoiceOnsets

    onsets = VoiceOnsets(RATE)
    fed = [VOICED, VOICED] + [SILENT] * 24 + [VOICED] + [SILENT] * 25 + [VOICED]
    found = [i for i, chunk in enumerate(fed) if onsets.feed(chunk)]
    # The start counts as quiet; 0.48 s of quiet is not enough, 0.5 s is.
    assert found == [0, 52]
    assert not onsets.feed(b"")
