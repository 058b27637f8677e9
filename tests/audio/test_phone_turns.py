"""Live turns and barge-ins (phone.turns), on synthetic PCM with a fake clock.

"Speech" is a 440 Hz tone at -10 dBFS, silence zeros, 16-bit mono at 8 kHz.
Each side is built as a list of 20 ms windows (voiced or not) and fed in
chunks, polling at each chunk's time, as the phone does while a call goes.

The invariant the generated test attacks: once the call is over, what the
live analysis reported (every turn with its answer, every barge-in with its
reaction and clear) is exactly what ``call``'s after-the-fact analysis
(``cli.audio.turns`` and ``barge_ins``, which the summary uses) finds in the
same audio; and a turn is never reported answered before its answer played.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.audio.turns import BargeIn, LiveTurns, TurnUpdate, barge_ins, turns
from pipecat_wsclient.audio.wav import float_to_pcm, pcm_to_float

RATE = 8000
W = 0.02
AMPLITUDE = math.sqrt(2) * 10 ** (-10 / 20)
VOICED = float_to_pcm(AMPLITUDE * np.sin(2 * np.pi * 440 * np.arange(int(RATE * W)) / RATE))
SILENT = bytes(len(VOICED))


def windows(*runs: tuple[bool, float]) -> list[bool]:
    """(voiced, seconds) runs → one flag per 20 ms window."""
    flags: list[bool] = []
    for voiced, seconds in runs:
        flags += [voiced] * round(seconds / W)
    return flags


def feed(
    ours: list[bool], theirs: list[bool], clears: tuple[float, ...] = (), chunk: int = 1
) -> tuple[LiveTurns, list[tuple[float, TurnUpdate | BargeIn]]]:
    """Play both sides from t=0 in chunks of ``chunk`` windows, polling as it goes."""
    live = LiveTurns(RATE)
    n = max(len(ours), len(theirs))
    ours = ours + [False] * (n - len(ours))
    theirs = theirs + [False] * (n - len(theirs))
    pending = sorted(clears)
    seen: list[tuple[float, TurnUpdate | BargeIn]] = []
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
    seen += [(math.inf, replace(u)) for u in live.poll(n * W + 60)]
    return live, seen


def render(flags: list[bool], n: int) -> np.ndarray:
    flags = flags + [False] * (n - len(flags))
    return pcm_to_float(b"".join(VOICED if v else SILENT for v in flags))


def test_a_turn_is_reported_when_our_utterance_ends_then_answered() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 1.5), (True, 1.0))
    live, seen = feed(ours, theirs)
    (turn,) = live.turns
    assert turn.utterance_end == pytest.approx(1.0)
    assert turn.latency == pytest.approx(0.5)
    # First reported (no answer) once 0.3 s of silence confirmed the end...
    first_at, first = seen[0]
    assert isinstance(first, TurnUpdate) and first_at == pytest.approx(1.3)
    # ...then again once the answer had gone on long enough (80 ms) not to be a click.
    assert [round(at, 2) for at, u in seen if isinstance(u, TurnUpdate)] == [1.3, 1.58]


def test_speech_the_bot_began_before_we_ended_is_no_answer() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 0.8), (True, 0.5), (False, 0.5), (True, 0.5))
    live, _ = feed(ours, theirs)
    assert live.turns[0].answer_start == pytest.approx(1.8)


def test_a_click_is_no_answer() -> None:
    ours = windows((True, 1.0))
    theirs = windows((False, 1.2), (True, 0.04), (False, 0.4), (True, 0.4))
    live, _ = feed(ours, theirs)
    assert live.turns[0].answer_start == pytest.approx(1.64)


def test_a_turn_left_unanswered_before_our_next_utterance_ends_stays_unanswered() -> None:
    ours = windows((True, 0.5), (False, 1.0), (True, 0.5))
    theirs = windows((False, 2.2), (True, 0.5))
    live, _ = feed(ours, theirs)
    assert [t.answer_start for t in live.turns] == [None, pytest.approx(2.2)]


def test_a_barge_in_reports_the_bots_reaction_and_its_clear() -> None:
    theirs = windows((False, 1.0), (True, 3.0))  # the bot talks from 1.0 to 4.0...
    theirs = theirs[: round(2.4 / W)]  # ...but stops at 2.4 (it heard us)
    ours = windows((False, 2.0), (True, 1.0))  # we speak from 2.0
    live, seen = feed(ours, theirs, clears=(2.3,))
    (barge_in,) = live.barge_ins
    assert barge_in.onset == pytest.approx(2.0)
    assert barge_in.reaction == pytest.approx(0.4)
    assert barge_in.clear == pytest.approx(2.3)
    # Known once 0.1 s of the bot's silence confirmed its stop, not at the end of the call.
    (at,) = [at for at, u in seen if isinstance(u, BargeIn)]
    assert at == pytest.approx(2.5)


def test_speaking_right_after_the_bot_is_not_a_barge_in() -> None:
    theirs = windows((True, 1.0))
    ours = windows((False, 1.1), (True, 0.5))
    live, _ = feed(ours, theirs)
    assert live.barge_ins == []


# -- generated: the live figures are the summary's figures ---------------------

runs = st.lists(st.tuples(st.booleans(), st.integers(1, 40)), min_size=1, max_size=14)


def flags_of(spec: list[tuple[bool, int]]) -> list[bool]:
    return [v for voiced, count in spec for v in [voiced] * count]


@pytest.mark.generated
@pytest.mark.timeout(1800)  # the long profile
@given(
    ours=runs,
    theirs=runs,
    chunk=st.sampled_from([1, 2, 3, 5]),
    clears=st.lists(st.integers(0, 300), max_size=3),
)
@budget(ci=300, long=20_000)
def test_live_turns_agree_with_the_calls_summary(ours, theirs, chunk, clears) -> None:
    ours_flags, theirs_flags = flags_of(ours), flags_of(theirs)
    clear_times = tuple(c * W for c in clears)
    live, seen = feed(ours_flags, theirs_flags, clear_times, chunk)
    n = max(len(ours_flags), len(theirs_flags)) + round(1.0 / W)
    left, right = render(ours_flags, n), render(theirs_flags, n)

    expected = turns(left, right, RATE)
    assert [(round(t.utterance_end, 6), t.answer_start) for t in live.turns] == [
        (round(t.utterance_end, 6), pytest.approx(t.answer_start)) for t in expected
    ]
    expected_barge = barge_ins(left, right, RATE)
    assert [(b.onset, b.stop) for b in live.barge_ins] == [
        (pytest.approx(onset), pytest.approx(stop)) for onset, stop in expected_barge
    ]
    for b in live.barge_ins:
        clear = next((t for t in sorted(clear_times) if t >= b.onset - 0.05), None)
        assert b.clear == (None if clear is None else pytest.approx(clear))
    # Nothing is known before it happened: an answer is reported once it played,
    # an utterance's end once the silence after it did.
    for at, update in seen:
        if isinstance(update, TurnUpdate):
            assert at >= update.utterance_end + 0.3 - 1e-6
            if update.answer_start is not None and at != math.inf:
                assert at >= update.answer_start + W - 1e-6
        else:
            assert at >= update.stop


# -- voice onsets (the mouth-to-bot timing rule) ---------------------------------


def test_voice_onsets_need_half_a_second_of_quiet_before_them() -> None:
    from pipecat_wsclient.audio.activity import VoiceOnsets

    onsets = VoiceOnsets(RATE)
    fed = [VOICED, VOICED] + [SILENT] * 24 + [VOICED] + [SILENT] * 25 + [VOICED]
    found = [i for i, chunk in enumerate(fed) if onsets.feed(chunk)]
    # The start counts as quiet; 0.48 s of quiet is not enough, 0.5 s is.
    assert found == [0, 52]
    assert not onsets.feed(b"")
