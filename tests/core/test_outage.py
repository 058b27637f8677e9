"""What the output keeps, drops and reports while the connection is down (pure, no I/O)."""

import random

import pytest
from pipecat.frames.frames import OutputAudioRawFrame, OutputTransportMessageFrame

from pipecat_wsclient.outage import DropReport, HeldFrame, OutageBuffer

SAMPLE_RATE = 16000
CHUNK_BYTES = 1280  # 40 ms of 16 kHz mono 16-bit
CHUNK_SECS = 0.04


def audio(n_bytes=CHUNK_BYTES, *, source_id=0, interruptible=False):
    frame = OutputAudioRawFrame(audio=bytes(n_bytes), sample_rate=SAMPLE_RATE, num_channels=1)
    secs = n_bytes / (SAMPLE_RATE * 2)
    return HeldFrame(frame, audio_secs=secs, source_id=source_id, interruptible=interruptible)


def message(n=0, *, source_id=0, interruptible=False):
    frame = OutputTransportMessageFrame(message={"n": n})
    return HeldFrame(frame, source_id=source_id, interruptible=interruptible)


def is_audio(held):
    return held.audio_secs > 0


def test_keeps_order_across_audio_and_messages():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=10)
    items = [audio(), message(1), audio(), audio(), message(2), message(3), audio()]
    for held in items:
        buffer.add(held)

    assert len(buffer) == 7
    assert buffer.audio_secs == pytest.approx(4 * CHUNK_SECS)

    drained = list(buffer.drain())
    assert [id(h) for h in drained] == [id(h) for h in items]
    assert len(buffer) == 0
    assert buffer.audio_secs == pytest.approx(0.0, abs=1e-12)
    assert list(buffer.drain()) == []
    assert not buffer.take_report()


def test_len_and_audio_secs_track_content():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=10)
    assert len(buffer) == 0
    assert buffer.audio_secs == 0.0

    buffer.add(audio())
    assert (len(buffer), buffer.audio_secs) == (1, pytest.approx(0.04))
    buffer.add(message())
    assert (len(buffer), buffer.audio_secs) == (2, pytest.approx(0.04))
    buffer.add(audio(640))
    assert (len(buffer), buffer.audio_secs) == (3, pytest.approx(0.06))

    drain = buffer.drain()
    first = next(drain)
    assert first.audio_secs == pytest.approx(0.04)
    assert (len(buffer), buffer.audio_secs) == (2, pytest.approx(0.02))
    rest = list(drain)
    assert len(rest) == 2
    assert (len(buffer), buffer.audio_secs) == (0, pytest.approx(0.0, abs=1e-12))


def test_buffer_is_reusable_after_drain():
    buffer = OutageBuffer(max_audio_secs=0.2, max_messages=2)
    for _ in range(5):
        buffer.add(audio())
    buffer.add(message())
    buffer.add(message())
    list(buffer.drain())

    fresh = [audio() for _ in range(5)] + [message(), message()]
    for held in fresh:
        buffer.add(held)
    assert [id(h) for h in buffer.drain()] == [id(h) for h in fresh]
    assert not buffer.take_report()


def test_audio_bound_keeps_newest_and_reports_dropped():
    buffer = OutageBuffer(max_audio_secs=0.2, max_messages=10)
    chunks = [audio() for _ in range(10)]
    for held in chunks:
        buffer.add(held)

    assert len(buffer) == 5
    assert buffer.audio_secs == pytest.approx(0.2)

    report = buffer.take_report()
    assert report.audio_frames == 5
    assert report.audio_secs == pytest.approx(0.2)
    assert report.audio_bytes == 6400
    assert report.messages == 0
    assert report

    kept = list(buffer.drain())
    assert [id(h) for h in kept] == [id(h) for h in chunks[5:]]

    second = buffer.take_report()
    assert not second
    assert second == DropReport()


def test_audio_bound_exactly_full_drops_nothing():
    buffer = OutageBuffer(max_audio_secs=0.2, max_messages=10)
    for _ in range(5):
        buffer.add(audio())
    assert len(buffer) == 5
    assert not buffer.take_report()


def test_audio_chunk_bigger_than_bound_is_dropped_itself():
    buffer = OutageBuffer(max_audio_secs=0.02, max_messages=10)
    buffer.add(audio(CHUNK_BYTES))
    assert len(buffer) == 0
    report = buffer.take_report()
    assert (report.audio_frames, report.audio_bytes, report.messages) == (1, CHUNK_BYTES, 0)


def test_messages_bound_by_count_oldest_first():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=3)
    msgs = [message(i) for i in range(5)]
    for held in msgs:
        buffer.add(held)

    assert len(buffer) == 3
    report = buffer.take_report()
    assert report.messages == 2
    assert (report.audio_frames, report.audio_secs, report.audio_bytes) == (0, 0.0, 0)
    assert report

    assert [h.frame.message["n"] for h in buffer.drain()] == [2, 3, 4]


def test_message_overflow_leaves_audio_untouched():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=2)
    a1, m0, a2, m1, m2, a3, m3 = (
        audio(),
        message(0),
        audio(),
        message(1),
        message(2),
        audio(),
        message(3),
    )
    for held in (a1, m0, a2, m1, m2, a3, m3):
        buffer.add(held)

    assert [id(h) for h in buffer.drain()] == [id(h) for h in (a1, a2, m2, a3, m3)]
    report = buffer.take_report()
    assert (report.messages, report.audio_frames, report.audio_bytes) == (2, 0, 0)


def test_audio_overflow_leaves_messages_untouched():
    buffer = OutageBuffer(max_audio_secs=0.08, max_messages=10)
    m0, a0, m1, a1, a2, m2, a3 = (
        message(0),
        audio(),
        message(1),
        audio(),
        audio(),
        message(2),
        audio(),
    )
    for held in (m0, a0, m1, a1, a2, m2, a3):
        buffer.add(held)

    assert [id(h) for h in buffer.drain()] == [id(h) for h in (m0, m1, a2, m2, a3)]
    report = buffer.take_report()
    assert (report.audio_frames, report.audio_bytes, report.messages) == (2, 2 * CHUNK_BYTES, 0)
    assert report.audio_secs == pytest.approx(0.08)


def test_zero_message_bound_keeps_no_messages():
    buffer = OutageBuffer(max_audio_secs=1.0, max_messages=0)
    a = audio()
    buffer.add(message())
    buffer.add(a)
    buffer.add(message())
    assert [id(h) for h in buffer.drain()] == [id(a)]
    assert buffer.take_report().messages == 2


def test_discard_interrupted_removes_only_older_interruptible_frames():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=10)
    old_bot_audio = [audio(source_id=i, interruptible=True) for i in (1, 2, 3)]
    old_message = message(0, source_id=4, interruptible=False)
    old_fixed_audio = audio(source_id=5, interruptible=False)
    old_interruptible_msg = message(1, source_id=6, interruptible=True)
    new_bot_audio = audio(source_id=20, interruptible=True)
    at_boundary = audio(source_id=10, interruptible=True)
    items = [
        *old_bot_audio,
        old_message,
        old_fixed_audio,
        old_interruptible_msg,
        at_boundary,
        new_bot_audio,
    ]
    for held in items:
        buffer.add(held)

    discarded = buffer.discard_interrupted(before_id=10)

    assert discarded == pytest.approx(3 * CHUNK_SECS)
    assert len(buffer) == 4
    assert buffer.audio_secs == pytest.approx(3 * CHUNK_SECS)
    assert not buffer.take_report()
    kept = [id(h) for h in buffer.drain()]
    assert kept == [id(h) for h in (old_message, old_fixed_audio, at_boundary, new_bot_audio)]
    assert not buffer.take_report()


def test_discard_interrupted_frees_room_for_messages():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=2)
    buffer.add(message(0, source_id=1, interruptible=True))
    buffer.add(message(1, source_id=2, interruptible=True))
    assert buffer.discard_interrupted(before_id=3) == 0.0
    assert len(buffer) == 0
    buffer.add(message(2, source_id=4))
    buffer.add(message(3, source_id=5))
    assert len(buffer) == 2
    assert not buffer.take_report()


def test_discard_interrupted_nothing_to_discard():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=10)
    buffer.add(audio(source_id=5, interruptible=True))
    assert buffer.discard_interrupted(before_id=5) == 0.0
    assert len(buffer) == 1
    assert buffer.audio_secs == pytest.approx(CHUNK_SECS)


def test_discarded_frames_are_not_reported_but_earlier_drops_stay():
    buffer = OutageBuffer(max_audio_secs=0.08, max_messages=10)
    for i in range(3):
        buffer.add(audio(source_id=i, interruptible=True))  # the first is dropped
    assert buffer.discard_interrupted(before_id=100) == pytest.approx(2 * CHUNK_SECS)
    report = buffer.take_report()
    assert (report.audio_frames, report.audio_bytes) == (1, CHUNK_BYTES)
    assert report.audio_secs == pytest.approx(CHUNK_SECS)


def test_drop_all_counts_everything_and_empties():
    buffer = OutageBuffer(max_audio_secs=2.0, max_messages=10)
    for held in (audio(), message(0), audio(640), message(1), message(2), audio()):
        buffer.add(held)

    buffer.drop_all()

    assert len(buffer) == 0
    assert buffer.audio_secs == 0.0
    assert list(buffer.drain()) == []
    report = buffer.take_report()
    assert report.audio_frames == 3
    assert report.audio_secs == pytest.approx(0.1)
    assert report.audio_bytes == 2 * CHUNK_BYTES + 640
    assert report.messages == 3
    assert not buffer.take_report()


def test_drop_all_adds_to_earlier_drops():
    buffer = OutageBuffer(max_audio_secs=0.08, max_messages=1)
    for held in (audio(), audio(), audio(), message(0), message(1)):
        buffer.add(held)  # drops 1 chunk and 1 message
    buffer.drop_all()
    report = buffer.take_report()
    assert (report.audio_frames, report.audio_bytes, report.messages) == (3, 3 * CHUNK_BYTES, 2)
    # Counters start over: the bound applies afresh.
    buffer.add(message(2))
    assert len(buffer) == 1
    assert not buffer.take_report()


def test_drop_report_str():
    report = DropReport(audio_frames=5, audio_secs=0.2, audio_bytes=6400, messages=2)
    assert str(report) == "0.20s of audio (5 chunks, 6400 bytes) and 2 messages"
    assert not DropReport()
    assert DropReport(messages=1)
    assert DropReport(audio_frames=1)


@pytest.mark.parametrize("seed", range(12))
def test_byte_accounting_is_exact(seed):
    rng = random.Random(seed)
    max_audio_secs = rng.choice([0.0, 0.05, 0.2, 0.5, 2.0])
    max_messages = rng.choice([0, 1, 3, 10, 100])
    buffer = OutageBuffer(max_audio_secs=max_audio_secs, max_messages=max_messages)

    added_bytes = 0
    added_messages = 0
    drained_bytes = 0
    drained_messages = 0
    dropped_bytes = 0
    dropped_frames = 0
    dropped_messages = 0
    added_frames = 0
    drained_frames = 0

    def drain():
        nonlocal drained_bytes, drained_messages, drained_frames
        for held in buffer.drain():
            if is_audio(held):
                drained_bytes += len(held.frame.audio)
                drained_frames += 1
            else:
                drained_messages += 1

    def take():
        nonlocal dropped_bytes, dropped_frames, dropped_messages
        report = buffer.take_report()
        dropped_bytes += report.audio_bytes
        dropped_frames += report.audio_frames
        dropped_messages += report.messages

    for _ in range(rng.randint(50, 400)):
        roll = rng.random()
        if roll < 0.6:
            n_bytes = 2 * rng.randint(1, 2400)  # up to 150 ms of 16-bit samples
            buffer.add(audio(n_bytes))
            added_bytes += n_bytes
            added_frames += 1
        elif roll < 0.9:
            buffer.add(message(added_messages))
            added_messages += 1
        elif roll < 0.95:
            drain()
        else:
            take()

        assert buffer.audio_secs <= max_audio_secs + 1e-6
        assert sum(not is_audio(h) for h in buffer._items) <= max_messages

    drain()
    take()

    assert len(buffer) == 0
    assert drained_bytes + dropped_bytes == added_bytes
    assert drained_frames + dropped_frames == added_frames
    assert drained_messages + dropped_messages == added_messages


@pytest.mark.parametrize("seed", range(6))
def test_drop_all_accounting_is_exact(seed):
    rng = random.Random(1000 + seed)
    buffer = OutageBuffer(max_audio_secs=0.3, max_messages=5)
    added_bytes = 0
    added_messages = 0
    for _ in range(rng.randint(20, 200)):
        if rng.random() < 0.7:
            n_bytes = 2 * rng.randint(1, 1600)
            buffer.add(audio(n_bytes))
            added_bytes += n_bytes
        else:
            buffer.add(message())
            added_messages += 1
    buffer.drop_all()
    report = buffer.take_report()
    assert len(buffer) == 0
    assert report.audio_bytes == added_bytes
    assert report.messages == added_messages


def test_requeue_keeps_order_after_a_failed_flush():
    from pipecat.frames.frames import OutputAudioRawFrame

    from pipecat_wsclient.outage import HeldFrame, OutageBuffer

    buffer = OutageBuffer(max_audio_secs=1.0, max_messages=10)
    frames = [HeldFrame(OutputAudioRawFrame(bytes(1280), 16000, 1), 0.04, i) for i in range(3)]
    for held in frames:
        buffer.add(held)
    drained = buffer.drain()
    first = next(drained)
    buffer.requeue(first)  # the send failed
    assert list(buffer.drain()) == frames
    assert abs(buffer.audio_secs) < 1e-9 and len(buffer) == 0
