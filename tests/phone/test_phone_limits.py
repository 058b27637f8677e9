"""The phone's bounds (phone.limits), pure, on a fake clock; and its page mic's pacing.

Each test states the invariant it protects: what waits never exceeds the
bound, what went in = what came out + what was dropped (counted), a page
cannot send more text than the rate allows, and the page's audio never goes
to the bot faster than real time, however fast it comes.
"""

from __future__ import annotations

import asyncio
import time

from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.phone.limits import DropOldest, RateLimit, Reported


@given(st.lists(st.one_of(st.integers(1, 5000), st.none()), max_size=200))
@budget(ci=200, long=5000)
def test_drop_oldest_holds_the_bound_and_accounts_for_every_byte(ops) -> None:
    """Invariant: held <= limit (or one chunk); put = taken + held + dropped, to the byte."""
    buffer = DropOldest(8000)
    put = taken = 0
    for op in ops:
        if op is None:
            chunk = buffer.get()
            taken += len(chunk or b"")
        else:
            buffer.put(bytes(op))
            put += op
        assert buffer.size <= buffer.limit or len(buffer) == 1
        assert put == taken + buffer.size + buffer.dropped


def test_drop_oldest_keeps_the_newest() -> None:
    buffer = DropOldest(4)
    for byte in b"abcdef":
        buffer.put(bytes([byte]))
    assert [buffer.get() for _ in range(5)] == [b"c", b"d", b"e", b"f", None]
    assert buffer.dropped == 2
    buffer.put(b"xy")
    assert buffer.clear() == 2 and buffer.dropped == 2  # letting go is not dropping


def test_the_rate_limit_allows_a_burst_then_the_rate() -> None:
    limit = RateLimit(rate=20.0, burst=50)
    assert sum(limit.allow(0.0) for _ in range(200)) == 50
    # One second later: 20 more, no more.
    assert sum(limit.allow(1.0) for _ in range(200)) == 20
    # Long idle: the bucket refills to the burst, not beyond.
    assert sum(limit.allow(100.0) for _ in range(200)) == 50


@given(st.lists(st.floats(0.0, 0.5), min_size=1, max_size=300))
@budget(ci=100, long=2000)
def test_the_rate_limit_never_allows_more_than_burst_plus_rate_times_time(gaps) -> None:
    limit = RateLimit(rate=20.0, burst=50)
    now = allowed = 0
    for gap in gaps:
        now += gap
        allowed += limit.allow(now)
        assert allowed <= 50 + 20.0 * now + 1e-9


def test_reported_names_the_first_then_counts() -> None:
    bad = Reported(3)
    named = [bad.add() for _ in range(6)]
    assert named == [True, True, True, False, False, False]
    assert bad.count == 6


async def test_the_page_mic_never_sends_faster_than_real_time() -> None:
    """60 s of chunks fed at once: what is pushed in 1 s is 1 s (+ the lead), the rest waits
    up to the bound; its oldest is dropped and counted."""
    from pipecat_wsclient.phone.call import _PageMic
    from pipecat_wsclient.phone.limits import PAGE_MIC_SECS

    mic = _PageMic()
    mic.set_rate(8000)
    pushed: list[tuple[float, int]] = []

    async def push_frame(frame, direction=None) -> None:
        pushed.append((time.monotonic(), len(frame.audio)))

    mic.push_frame = push_frame  # type: ignore[method-assign]
    chunk = bytes(320)  # 20 ms
    for _ in range(3000):  # 60 s
        mic.feed(chunk)
    assert mic.dropped_bytes == 3000 * 320 - int(PAGE_MIC_SECS * 16000)
    start = time.monotonic()
    task = asyncio.create_task(mic.produce())
    await asyncio.sleep(1.0)
    task.cancel()
    elapsed = time.monotonic() - start
    secs = sum(n for _, n in pushed) / 16000
    print(f"pushed {secs:.2f} s in {elapsed:.2f} s")
    assert secs <= elapsed + 0.1
    assert secs >= 0.5  # it does push
