#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Asterisk flow control (pure): queue estimate, XOFF/XON and the hold queue, fake clock."""

import pytest

from pipecat_wsclient.protocols.asterisk.flow import (
    DEFAULT_MAX_QUEUED_FRAMES,
    DEFAULT_RESUME_QUEUED_FRAMES,
    QUEUE_XON_LEVEL,
    FlowControl,
)

FRAME = 160  # ulaw, 20 ms


def ulaw_flow(**kwargs) -> FlowControl:
    flow = FlowControl(**kwargs)
    flow.start(frame_bytes=FRAME, ptime=0.02, sample_rate=8000, sample_width=1)
    return flow


def test_defaults_sit_between_asterisk_levels():
    assert DEFAULT_MAX_QUEUED_FRAMES == 950
    assert DEFAULT_RESUME_QUEUED_FRAMES == 850
    assert QUEUE_XON_LEVEL == 800


def test_queue_estimate_is_frames_sent_minus_one_per_ptime():
    flow = ulaw_flow()
    flow.note_sent(b"\xff" * (10 * FRAME), 100.0)
    assert flow.queued_frames(100.0) == pytest.approx(10)
    assert flow.queued_frames(100.1) == pytest.approx(5)
    assert flow.queued_frames(100.5) == 0
    # Sent after the queue ran dry: it starts from now, not from the old end.
    flow.note_sent(b"\xff" * (4 * FRAME), 101.0)
    assert flow.queued_frames(101.0) == pytest.approx(4)
    # Text does not lengthen the queue.
    flow.note_sent("MARK_MEDIA", 101.0)
    assert flow.queued_frames(101.0) == pytest.approx(4)


def test_bound_on_the_estimate():
    flow = ulaw_flow(max_queued_frames=10)
    assert flow.may_send(b"\xff" * (10 * FRAME), 0.0)
    assert not flow.may_send(b"\xff" * (11 * FRAME), 0.0)
    flow.note_sent(b"\xff" * (8 * FRAME), 0.0)
    assert flow.may_send(b"\xff" * (2 * FRAME), 0.0)
    assert not flow.may_send(b"\xff" * (3 * FRAME), 0.0)
    assert flow.may_send(b"\xff" * (3 * FRAME), 0.02)  # one frame played
    assert flow.may_send("GET_STATUS", 0.0)  # commands are never bounded


def test_no_bound_relies_on_xoff_alone():
    flow = ulaw_flow(max_queued_frames=None)
    assert flow.may_send(b"\xff" * (5000 * FRAME), 0.0)


def test_xoff_blocks_audio_and_lowers_the_bound():
    flow = ulaw_flow()
    flow.on_xoff(1.0)
    assert flow.paused
    assert flow.cap == 850
    assert not flow.may_send(b"\xff" * FRAME, 1.0)
    assert flow.may_send("HANGUP", 1.0)
    flow.on_xoff(2.0)  # a second XOFF does not restart the pause
    assert flow.on_xon(3.5) == pytest.approx(2.5)
    assert not flow.paused
    assert flow.cap == 850  # stays below the XOFF level from now on


def test_xon_reanchors_the_estimate_just_below_the_xon_level():
    flow = ulaw_flow()
    flow.on_xoff(0.0)
    flow.on_xon(10.0)
    assert flow.queued_frames(10.0) == pytest.approx(799)
    flow.xon_level = 500  # as a STATUS reports it
    assert flow.on_xon(20.0) == 0.0  # not paused: no pause time
    assert flow.queued_frames(20.0) == pytest.approx(499)
    # After XON there is room up to the resume level (850), about 51 frames.
    flow.xon_level = QUEUE_XON_LEVEL
    flow.on_xoff(30.0)
    flow.on_xon(30.0)
    assert flow.may_send(b"\xff" * (50 * FRAME), 30.0)
    assert not flow.may_send(b"\xff" * (52 * FRAME), 30.0)


def test_flush_empties_the_estimate():
    flow = ulaw_flow()
    flow.note_sent(b"\xff" * (100 * FRAME), 0.0)
    flow.on_flush(0.5)
    assert flow.queued_frames(0.5) == 0


def test_xon_after_a_flush_during_xoff_does_not_raise_the_estimate_back():
    """Real Asterisk: FLUSH_MEDIA during XOFF is answered by MEDIA_XON on the next tick.

    The XON used to re-anchor the estimate at 799 frames (16 s) over a queue
    the flush had emptied, and the next EndFrame waited the whole end timeout.
    """
    flow = ulaw_flow()
    flow.note_sent(b"\xff" * (950 * FRAME), 0.0)
    flow.on_xoff(0.0)
    flow.on_flush(1.0)
    assert flow.queued_frames(1.0) == 0
    flow.on_xon(1.02)  # the next tick
    assert flow.queued_frames(1.02) == 0
    assert flow.playout_end <= 1.02
    # What we send after the flush is all Asterisk's queue holds.
    flow.note_sent(b"\xff" * (10 * FRAME), 1.1)
    flow.on_xoff(1.1)
    flow.on_flush(1.1)
    flow.note_sent(b"\xff" * (5 * FRAME), 1.1)
    flow.on_xon(1.12)
    assert flow.queued_frames(1.12) == pytest.approx(4)
    # A later XOFF/XON without a flush re-anchors at the XON level again.
    flow.on_xoff(2.0)
    flow.on_xon(3.0)
    assert flow.queued_frames(3.0) == pytest.approx(799)


def test_hold_and_release_in_order_as_room_appears():
    flow = ulaw_flow(max_queued_frames=10)
    flow.note_sent(b"\xff" * (10 * FRAME), 0.0)
    audio = b"\x01" * (5 * FRAME)
    assert flow.hold(audio) == 0
    assert flow.hold("MARK_MEDIA correlation_id:x") == 0
    assert flow.holding
    assert flow.held_secs == pytest.approx(0.1)
    assert flow.release(0.0) is None  # no room yet
    assert flow.release(0.1) == audio  # 5 frames played
    assert flow.queued_frames(0.1) == pytest.approx(10)
    assert flow.release(0.1) == "MARK_MEDIA correlation_id:x"
    assert flow.release(0.1) is None
    assert not flow.holding
    assert flow.held_bytes == 0


def test_release_waits_while_paused_unless_told_not_to():
    flow = ulaw_flow()
    flow.on_xoff(0.0)
    flow.hold("STOP_MEDIA_BUFFERING x")
    assert flow.release(0.0) is None
    assert flow.release(0.0, ignore_pause=True) == "STOP_MEDIA_BUFFERING x"


def test_held_limit_drops_the_oldest_audio_and_counts_it():
    flow = ulaw_flow(max_held_secs=0.1)  # 800 bytes of ulaw
    first, second, third = b"\x01" * 400, b"\x02" * 400, b"\x03" * 160
    assert flow.hold(first) == 0
    assert flow.hold("MARK_MEDIA correlation_id:a") == 0
    assert flow.hold(second) == 0
    assert flow.held_bytes == 800
    assert flow.hold(third) == 400  # the oldest audio goes, the command stays
    assert list(flow.held) == ["MARK_MEDIA correlation_id:a", second, third]
    assert flow.held_bytes == 560
    assert flow.secs(400) == pytest.approx(0.05)


def test_no_limit_before_media_start_and_clear_counts():
    flow = FlowControl(max_held_secs=0.001)
    assert flow.hold(b"\x00" * 1000) == 0  # rate unknown: no limit, no seconds
    assert flow.held_secs == 0.0
    assert flow.frames(1000) == 0
    assert flow.clear() == 1000
    assert not flow.holding
