"""The pacing clock, driven by a fake clock."""

import pytest

from pipecat_wsclient.pacing import PaceClock, pcm_duration

CHUNK = 0.04


def simulate(clock: PaceClock, chunks: int, jitter: float = 0.0, start: float = 100.0):
    """Send ``chunks`` chunks, sleeping as told, oversleeping by ``jitter`` each time."""
    now = start
    sends = []
    for _ in range(chunks):
        delay = clock.delay(now)
        if delay > 0:
            now += delay + jitter
        sends.append(now)
        clock.sent(CHUNK)
    return sends


def test_first_chunks_use_the_lead_then_real_time():
    clock = PaceClock(lead_secs=0.1)
    sends = simulate(clock, 10)
    # 0.1 s of lead: chunks at 0, 0.04, 0.08 of audio go at once.
    assert sends[:3] == [100.0, 100.0, 100.0]
    # Chunk k goes at start + k*CHUNK - lead.
    for k in range(3, 10):
        assert sends[k] == pytest.approx(100.0 + k * CHUNK - 0.1)


def test_no_drift_with_late_wakeups():
    """Oversleeping 3 ms on every chunk does not accumulate: the schedule is absolute."""
    clock = PaceClock(lead_secs=0.0)
    n = int(30 / CHUNK)
    sends = simulate(clock, n, jitter=0.003)
    expected_last = 100.0 + (n - 1) * CHUNK
    # At most one jitter late, never n * jitter.
    assert sends[-1] - expected_last == pytest.approx(0.003, abs=1e-9)
    rate = (n - 1) * CHUNK / (sends[-1] - sends[0])
    assert rate == pytest.approx(1.0, abs=1e-3)


def test_never_more_than_lead_ahead():
    clock = PaceClock(lead_secs=0.1)
    sends = simulate(clock, 200)
    for k, t in enumerate(sends):
        ahead = (100.0 + k * CHUNK) - t
        assert ahead <= 0.1 + 1e-9


def test_idle_restarts_schedule():
    clock = PaceClock(lead_secs=0.0, max_lag_secs=0.1)
    simulate(clock, 5, start=0.0)  # 0.2 s of audio, schedule ends at 0.2
    # The producer goes quiet for 5 s: no burst to catch up, a new schedule.
    assert clock.delay(5.0) == 0.0
    clock.sent(CHUNK)
    assert clock.delay(5.0) == pytest.approx(CHUNK)


def test_small_lag_is_caught_up_not_reset():
    clock = PaceClock(lead_secs=0.0, max_lag_secs=0.1)
    assert clock.delay(0.0) == 0.0
    clock.sent(CHUNK)
    # 50 ms late for the next chunk: send at once, keep the schedule.
    now = CHUNK + 0.05
    assert clock.delay(now) == 0.0
    clock.sent(CHUNK)
    assert clock.delay(now) == 0.0  # still behind: catch up
    clock.sent(CHUNK)
    # Caught up: the third chunk's slot (0.12) is 30 ms ahead of now (0.09).
    assert clock.delay(now) == pytest.approx(3 * CHUNK - now)


def test_reset_on_interruption():
    clock = PaceClock(lead_secs=0.0)
    simulate(clock, 10, start=0.0)
    clock.reset()
    assert not clock.running
    assert clock.delay(0.05) == 0.0


def test_ahead_is_what_is_left_to_play():
    clock = PaceClock(lead_secs=0.1)
    assert clock.ahead(5.0) == 0.0  # nothing sent yet
    assert clock.delay(10.0) == 0.0
    clock.sent(0.04)
    clock.sent(0.04)
    assert clock.ahead(10.0) == pytest.approx(0.08)
    assert clock.ahead(10.05) == pytest.approx(0.03)
    assert clock.ahead(10.2) == 0.0  # all played
    clock.reset()
    assert clock.ahead(10.0) == 0.0


def test_sent_before_delay_is_an_error():
    with pytest.raises(RuntimeError):
        PaceClock().sent(0.02)


def test_negative_values_rejected():
    with pytest.raises(ValueError):
        PaceClock(lead_secs=-1)


@pytest.mark.parametrize(
    ("nbytes", "rate", "channels", "secs"),
    [(640, 16000, 1, 0.02), (1280, 16000, 2, 0.02), (7680, 48000, 2, 0.04), (320, 8000, 1, 0.02)],
)
def test_pcm_duration_counts_rate_and_channels(nbytes, rate, channels, secs):
    assert pcm_duration(nbytes, rate, channels) == pytest.approx(secs)


def test_a_chunk_sent_across_a_reset_is_not_added_to_the_next_schedule():
    """Barge-in while a chunk is being written: its sent() after reset() is ignored."""
    clock = PaceClock(lead_secs=0.0, max_lag_secs=1.0)
    assert clock.delay(10.0) == 0.0
    schedule = clock.resets
    clock.reset()  # the interruption, while the chunk's send is blocked
    clock.sent(0.04, resets=schedule)  # no RuntimeError
    assert not clock.running
    assert clock.delay(10.5) == 0.0  # the next chunk starts a fresh schedule
    clock.sent(0.04, resets=clock.resets)
    assert clock.sent_secs == 0.04
    assert clock.delay(10.5) == pytest.approx(0.04)


def test_sent_without_delay_still_raises_when_no_schedule_is_named():
    clock = PaceClock()
    with pytest.raises(RuntimeError):
        clock.sent(0.02)
