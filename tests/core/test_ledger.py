"""The output's books (pure, no I/O): every frame sent, held, dropped or interrupted, counted."""

import pytest
from pipecat.frames.frames import OutputAudioRawFrame, OutputTransportMessageFrame

from pipecat_wsclient.ledger import OutputLedger
from pipecat_wsclient.outage import HeldFrame, OutageBuffer
from pipecat_wsclient.stats import WebsocketClientStats

CHUNK_SECS = 0.04


def chunk(source_id, *, interruptible=True):
    frame = OutputAudioRawFrame(audio=bytes(1280), sample_rate=16000, num_channels=1)
    return HeldFrame(frame, CHUNK_SECS, source_id, interruptible)


def ledger(max_audio_secs=2.0, max_messages=10):
    return OutputLedger(WebsocketClientStats(), OutageBuffer(max_audio_secs, max_messages))


def test_interrupt_makes_older_interruptible_frames_stale_only():
    books = ledger()
    assert not books.is_stale(5, True)
    books.interrupt(before_id=10)
    assert books.is_stale(5, True)
    assert not books.is_stale(5, False)  # not interruptible
    assert not books.is_stale(10, True)  # queued after the interruption
    assert not books.is_stale(11, True)


def test_interrupt_discards_held_audio_and_counts_it_as_interrupted():
    books = ledger()
    for source_id in (1, 2, 3, 20):
        books.outage.add(chunk(source_id))
    books.outage.add(HeldFrame(OutputTransportMessageFrame(message={}), source_id=4))
    books.interrupt(before_id=10)
    assert books.stats.interrupted_audio_secs == pytest.approx(3 * CHUNK_SECS)
    assert [h.source_id for h in books.outage.drain()] == [20, 4]  # order kept
    assert books.stats.dropped_frames == 0


def test_sent_interrupted_and_dropped_add_up_to_what_was_produced():
    books = ledger()
    books.count_sent_audio(CHUNK_SECS)
    books.count_sent_audio(CHUNK_SECS)
    books.count_interrupted(CHUNK_SECS)
    books.count_dropped(CHUNK_SECS, now=0.0)
    books.count_stale_tail(0.01)
    s = books.stats
    assert s.audio_frames_sent == 2
    assert s.audio_secs_sent == pytest.approx(2 * CHUNK_SECS)
    assert s.interrupted_audio_secs == pytest.approx(CHUNK_SECS)
    assert s.dropped_frames == 2
    assert s.dropped_audio_secs == pytest.approx(CHUNK_SECS + 0.01)
    total = s.audio_secs_sent + s.interrupted_audio_secs + s.dropped_audio_secs
    assert total == pytest.approx(4 * CHUNK_SECS + 0.01)


def test_count_dropped_is_counted_every_time_but_logged_at_a_limited_rate():
    books = ledger()
    said = [books.count_dropped(0.02, now=t) for t in (0.0, 1.0, 2.0, 5.5, 6.0)]
    assert said == [0, None, None, 2, None]
    assert books.stats.dropped_frames == 5
    assert books.stats.dropped_audio_secs == pytest.approx(0.1)


def test_must_hold_while_reconnecting_or_until_the_buffer_is_empty():
    books = ledger()
    assert not books.must_hold(False)
    assert books.must_hold(True)
    books.outage.add(chunk(1))
    assert books.must_hold(False)
    list(books.outage.drain())
    assert not books.must_hold(False)


def test_outage_overflow_is_reported_once_and_counted_as_dropped():
    books = ledger(max_audio_secs=0.1)
    for source_id in range(5):  # 0.2 s into a 0.1 s buffer
        books.outage.add(chunk(source_id))
    report = books.take_outage_report()
    assert report is not None
    assert report.audio_frames == 3
    assert books.stats.dropped_frames == 3
    assert books.stats.dropped_audio_secs == pytest.approx(3 * CHUNK_SECS)
    assert books.take_outage_report() is None  # once


def test_abandon_outage_counts_everything_held():
    books = ledger()
    books.outage.add(chunk(1))
    books.outage.add(HeldFrame(OutputTransportMessageFrame(message={}), source_id=2))
    report = books.abandon_outage()
    assert report is not None
    assert (report.audio_frames, report.messages) == (1, 1)
    assert books.stats.dropped_frames == 2
    assert not books.outage
    assert books.abandon_outage() is None


def test_end_silence_is_never_dropped_audio_and_the_bots_audio_still_adds_up():
    """Issue 24, item 4: end silence not sent is not a loss; sent, it is counted apart."""
    books = ledger()
    produced = 3 * CHUNK_SECS  # the bot's audio
    books.count_sent_audio(CHUNK_SECS)
    books.count_dropped(CHUNK_SECS, now=0.0)
    books.count_interrupted(CHUNK_SECS)
    books.count_sent_audio(CHUNK_SECS, end_silence=True)  # the end silence: one chunk out,
    books.count_unsent_end_silence(1.96)  # the rest not (the far end hung up)
    s = books.stats
    assert s.dropped_audio_secs == pytest.approx(CHUNK_SECS)  # the bot's chunk only
    assert s.dropped_frames == 1
    assert s.audio_secs_sent == pytest.approx(2 * CHUNK_SECS)  # what went on the wire
    assert s.end_silence_secs_sent == pytest.approx(CHUNK_SECS)
    assert s.end_silence_secs_unsent == pytest.approx(1.96)
    bot = s.audio_secs_sent - s.end_silence_secs_sent + s.dropped_audio_secs
    assert bot + s.interrupted_audio_secs == pytest.approx(produced)
