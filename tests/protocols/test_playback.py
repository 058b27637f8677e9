"""The carrier's playback clock (protocols/playback.py), on a fake clock.

A bot sends 20 ms chunks on its own absolute schedule; they arrive after a
network delay plus jitter (in order, as over TCP), and ``advance`` is
called on ticks of 10 ms plus a random overshoot (an event loop's late
wake-ups) and the odd long stall. Over 120 simulated seconds the audio must
be released at the rate it plays (the drift of issue 24: 75-89 ms/s at
8 kHz came from starting each chunk at the tick that released it), each
mark at the first tick after its audio has played, and the schedule may
restart only when the audio genuinely ran dry.
"""

from __future__ import annotations

import bisect
import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.protocols.playback import DEFAULT_UNDERRUN_SECS, PlaybackClock

TICK = 0.01
PTIME = 0.02
SIM_SECS = 120.0
CHUNKS = round(SIM_SECS / PTIME)
MARK_EVERY = 50
"""A mark after every 50th chunk (once a second)."""
EPS = 1e-9
"""Rounding: times are sums of floats."""


def chunk_bytes(rate: int) -> int:
    return round(2 * rate * PTIME)


@dataclass
class Arrival:
    at: float
    audio: bytes | None = None
    mark: str | None = None


@dataclass
class Run:
    """What a simulation released, and when."""

    audio_at: list[float] = field(default_factory=list)  # chunk k's release time
    audio: list[bytes] = field(default_factory=list)
    marks_at: dict[str, float] = field(default_factory=dict)
    ticks: list[float] = field(default_factory=list)

    def first_tick_at_or_after(self, t: float) -> float:
        i = bisect.bisect_left(self.ticks, t)
        return self.ticks[i] if i < len(self.ticks) else float("inf")


def play(clock: PlaybackClock, arrivals: list[Arrival], ticks: Iterator[float]) -> Run:
    """Feed the arrivals at their times and advance the clock on each tick."""
    run = Run()
    i = 0
    for tick in ticks:
        while i < len(arrivals) and arrivals[i].at <= tick:
            a = arrivals[i]
            if a.audio is not None:
                clock.add_audio(a.audio, a.at)
            else:
                assert a.mark is not None
                clock.add_mark(a.mark)
            i += 1
        released = clock.advance(tick)
        run.ticks.append(tick)
        run.audio_at += [tick] * len(released.audio)
        run.audio += released.audio
        for name in released.marks:
            run.marks_at[name] = tick
        if i == len(arrivals) and clock.next_due is None:
            break
    return run


def jittery_ticks(rng: random.Random, overshoot: float, stall_p: float) -> Iterator[float]:
    """Ticks of ``TICK`` plus up to ``overshoot``; with probability ``stall_p`` 50-200 ms."""
    t = 0.0
    while True:
        yield t
        t += TICK + rng.uniform(0, overshoot)
        if rng.random() < stall_p:
            t += rng.uniform(0.05, 0.2)


@dataclass
class Bot:
    """A bot speaking 20 ms chunks without a pause; chunk k is sent at ``k * PTIME``."""

    rate: int
    delay: float
    jitter: float
    arrivals: list[Arrival] = field(default_factory=list)
    arrival_of_chunk: list[float] = field(default_factory=list)

    @classmethod
    def speaking(cls, rng: random.Random, rate: int, delay: float, jitter: float) -> Bot:
        bot = cls(rate, delay, jitter)
        size = chunk_bytes(rate)
        at = 0.0
        for k in range(CHUNKS):
            at = max(at, k * PTIME + delay + rng.uniform(0, jitter))  # in order, as over TCP
            bot.arrivals.append(Arrival(at, audio=k.to_bytes(4, "big") * (size // 4)))
            bot.arrival_of_chunk.append(at)
            if (k + 1) % MARK_EVERY == 0:
                bot.arrivals.append(Arrival(at, mark=f"m{k}"))
        return bot


def drift_ms_per_sec(sent: list[float], released: list[float]) -> float:
    """The slope of (release time - send time) over the send time, in ms per second."""
    lags = [r - s for s, r in zip(sent, released, strict=True)]
    return 1000 * statistics.linear_regression(sent, lags).slope


bots = st.tuples(st.integers(0, 2**32 - 1), st.sampled_from([8000, 16000]), st.floats(0.0, 0.3))
"""A bot: the seed of its jitter and ticks, its rate and its network delay."""


# -- generated: continuous audio over 120 s ------------------------------------------


@pytest.mark.generated
@given(bots, st.floats(0.0, 0.019), st.floats(0.0, 0.003), st.floats(0.0, 0.002))
@budget(ci=30, long=1000)
def test_continuous_audio_plays_on_its_schedule(bot_args, jitter, overshoot, stall_p):
    """Jitter under the underrun tolerance: one schedule from the first arrival, no drift."""
    seed, rate, delay = bot_args
    rng = random.Random(seed)
    bot = Bot.speaking(rng, rate, delay, jitter)
    clock = PlaybackClock(bytes_per_sec=2 * rate)
    run = play(clock, bot.arrivals, jittery_ticks(rng, overshoot, stall_p))

    assert run.audio == [a.audio for a in bot.arrivals if a.audio is not None]
    assert clock.underruns == 0 and clock.gap_secs == 0
    assert clock.queued_secs == 0 and clock.next_due is None
    start = bot.arrival_of_chunk[0]
    size = chunk_bytes(rate)
    for k, released_at in enumerate(run.audio_at):
        # Chunk k starts at start + k * 20 ms, however late the ticks ran: it is
        # released by the first tick at or after that time (and its arrival).
        due = start + (k * size) / (2 * rate)
        assert released_at == run.first_tick_at_or_after(max(due, bot.arrival_of_chunk[k])), k
    for k in range(MARK_EVERY - 1, CHUNKS, MARK_EVERY):
        # The mark after chunk k: at the first tick once chunk k has played.
        end = start + ((k + 1) * size) / (2 * rate)
        assert run.marks_at[f"m{k}"] == run.first_tick_at_or_after(end), k
    sent = [k * PTIME for k in range(CHUNKS)]
    assert abs(drift_ms_per_sec(sent, run.audio_at)) < 1.0
    # The schedule's end: 120 s after the first arrival, not a tick-accumulated later.
    last = run.marks_at[f"m{CHUNKS - 1}"]
    assert start + SIM_SECS <= last <= start + SIM_SECS + TICK + overshoot + 0.2


@pytest.mark.generated
@given(bots, st.floats(0.0, 0.1), st.floats(0.0, 0.003), st.floats(0.0, 0.002))
@budget(ci=30, long=1000)
def test_jitter_restarts_the_schedule_a_bounded_number_of_times(
    bot_args, jitter, overshoot, stall_p
):
    """Any jitter: audio and marks never before they can have played, never drifting later."""
    seed, rate, delay = bot_args
    rng = random.Random(seed)
    bot = Bot.speaking(rng, rate, delay, jitter)
    clock = PlaybackClock(bytes_per_sec=2 * rate)
    run = play(clock, bot.arrivals, jittery_ticks(rng, overshoot, stall_p))

    assert run.audio == [a.audio for a in bot.arrivals if a.audio is not None]
    # Each restart moves the schedule more than the tolerance later, and it
    # can lag the bot's own schedule by no more than the jitter.
    assert clock.underruns <= jitter / DEFAULT_UNDERRUN_SECS
    assert clock.gap_secs <= jitter + EPS  # silence only for the jitter, in all
    for k, released_at in enumerate(run.audio_at):
        # Chunk k was sent at k * 20 ms: it cannot start before it arrived, and
        # starts at the latest once the jitter has passed. Over 120 s that is no
        # drift at all: the lag stays under the jitter plus a tick.
        sent = k * PTIME
        assert released_at >= bot.arrival_of_chunk[k] and released_at >= sent + delay - EPS
        assert released_at <= run.first_tick_at_or_after(sent + delay + jitter + EPS), k
    for k in range(MARK_EVERY - 1, CHUNKS, MARK_EVERY):
        played = (k + 1) * PTIME + delay  # the earliest chunk k can have finished playing
        marked_at = run.marks_at[f"m{k}"]
        assert played - EPS <= marked_at <= run.first_tick_at_or_after(played + jitter + EPS), k


# -- examples ------------------------------------------------------------------------

RATE = 8000
BPS = 2 * RATE
CHUNK = b"\x01\x00" * 160  # 20 ms at 8 kHz


def test_ticks_that_run_late_lose_nothing():
    """The issue's case: 10.7 ms ticks used to push each chunk to the tick that released it."""
    arrivals = [Arrival(k * PTIME, audio=CHUNK) for k in range(CHUNKS)]
    arrivals.append(Arrival(arrivals[-1].at, mark="end"))
    ticks = (i * 0.0107 for i in range(10**6))
    clock = PlaybackClock(BPS)
    run = play(clock, arrivals, ticks)
    # Before the fix: about 70 ms/s late, the mark 8 s after the audio's end.
    assert abs(drift_ms_per_sec([k * PTIME for k in range(CHUNKS)], run.audio_at)) < 0.1
    assert SIM_SECS <= run.marks_at["end"] < SIM_SECS + 0.0107


def test_a_bot_ahead_of_real_time_is_released_at_the_rate_it_plays():
    clock = PlaybackClock(BPS)
    for _ in range(50):
        clock.add_audio(CHUNK, 1.0)  # a second of audio at once
    clock.add_mark("m")
    assert clock.queued_secs == pytest.approx(1.0)
    assert len(clock.advance(1.0).audio) == 1
    assert clock.next_due == pytest.approx(1.02)
    assert clock.advance(1.019).audio == []
    assert len(clock.advance(1.5).audio) == 25  # chunks 1..25 started by 1.5 s
    released = clock.advance(1.99)
    assert len(released.audio) == 24 and released.marks == []  # the last one still plays
    assert clock.advance(2.0).marks == ["m"]
    assert clock.next_due is None and clock.played_bytes == 50 * len(CHUNK)


def test_audio_a_little_late_keeps_its_place_on_the_schedule():
    clock = PlaybackClock(BPS)
    clock.add_audio(CHUNK, 0.0)
    clock.advance(0.0)
    clock.add_audio(CHUNK, 0.035)  # 15 ms after the first one finished: jitter
    clock.add_mark("m")
    assert clock.advance(0.035).audio == [CHUNK]
    assert clock.advance(0.0399).marks == []
    assert clock.advance(0.04).marks == ["m"]  # 0.02 + 0.02, not 0.035 + 0.02
    assert clock.underruns == 0


def test_an_underrun_restarts_the_schedule_when_the_audio_arrives():
    clock = PlaybackClock(BPS)
    for k in range(50):
        clock.add_audio(CHUNK, k * PTIME)
        clock.advance(k * PTIME + 0.001)
    # The bot pauses: its next chunk comes 200 ms after the last one finished.
    # The carrier played silence meanwhile; the audio starts when it arrives.
    clock.add_audio(CHUNK, 1.2)
    clock.add_mark("after-pause")
    assert clock.underruns == 1 and clock.gap_secs == pytest.approx(0.2)
    assert clock.next_due == pytest.approx(1.2)  # due now, not caught up from 1.0
    assert clock.advance(1.2).audio == [CHUNK]
    assert clock.advance(1.2199).marks == []
    assert clock.advance(1.22).marks == ["after-pause"]
    # The tolerance is one 20 ms frame: less late keeps the schedule, more restarts it.
    clock.add_audio(CHUNK, 1.2399)
    assert clock.underruns == 1
    clock.advance(1.2399)
    clock.add_audio(CHUNK, 1.2601)
    assert clock.underruns == 2 and clock.gap_secs == pytest.approx(0.2201)


def test_the_underrun_tolerance_is_a_parameter():
    clock = PlaybackClock(BPS, underrun_secs=0.0)
    clock.add_audio(CHUNK, 0.0)
    clock.advance(0.0)
    clock.add_audio(CHUNK, 0.021)
    assert clock.underruns == 1 and clock.next_due == 0.021
    with pytest.raises(ValueError):
        PlaybackClock(BPS, underrun_secs=-0.01)
    with pytest.raises(ValueError):
        PlaybackClock(0)


def test_a_stalled_tick_releases_what_is_due_and_keeps_the_schedule():
    clock = PlaybackClock(BPS)
    for _ in range(10):
        clock.add_audio(CHUNK, 0.0)
    clock.add_mark("m")
    assert len(clock.advance(0.0).audio) == 1
    assert len(clock.advance(0.15).audio) == 7  # chunks 1..7 started by 0.14
    released = clock.advance(0.5)
    assert len(released.audio) == 2 and released.marks == ["m"]
    assert clock.play_end == pytest.approx(0.2) and clock.underruns == 0


def test_a_mark_before_any_audio_is_released_at_once():
    clock = PlaybackClock(BPS)
    assert clock.play_end is None and clock.next_due is None
    clock.add_mark("first")
    assert clock.next_due == float("-inf")
    assert clock.advance(5.0).marks == ["first"]


def test_marks_wait_for_all_the_audio_before_them_and_keep_their_order():
    clock = PlaybackClock(BPS)
    clock.add_audio(CHUNK, 0.0)
    clock.add_mark("a")
    clock.add_audio(CHUNK * 2, 0.0)
    clock.add_mark("b")
    clock.add_mark("c")
    released = clock.advance(0.0)
    assert released.audio == [CHUNK] and released.marks == []
    released = clock.advance(0.02)
    assert released.marks == ["a"] and released.audio == [CHUNK * 2]
    assert clock.advance(0.0599).marks == []
    assert clock.advance(0.06).marks == ["b", "c"]


def test_clear_drops_the_audio_not_started_and_releases_every_mark():
    clock = PlaybackClock(BPS)
    for k in range(10):
        clock.add_audio(CHUNK, 0.0)
        clock.add_mark(f"m{k}")
    released = clock.advance(0.025)
    assert len(released.audio) == 2 and released.marks == ["m0"]  # chunk 1 plays till 0.04
    released = clock.clear()
    assert released.audio == [] and released.marks == [f"m{k}" for k in range(1, 10)]
    assert clock.cleared_bytes == 8 * len(CHUNK) and clock.played_bytes == 2 * len(CHUNK)
    assert clock.queued_secs == 0 and clock.next_due is None
    assert clock.advance(1.0).audio == []
    # The chunk already started plays to its end: audio right after it follows it.
    clock.add_audio(CHUNK, 0.03)
    assert clock.next_due == pytest.approx(0.04) and clock.underruns == 0
    # After a pause longer than the tolerance, the next audio restarts the schedule.
    clock.advance(0.04)
    clock.clear()
    clock.add_audio(CHUNK, 0.5)
    assert clock.next_due == 0.5 and clock.underruns == 1


def test_a_clear_with_nothing_queued_releases_nothing():
    clock = PlaybackClock(BPS)
    released = clock.clear()
    assert released.audio == [] and released.marks == [] and clock.cleared_bytes == 0
