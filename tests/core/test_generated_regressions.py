"""Defects the generated calls found, each kept as the plain call that showed it.

Each test plays one fixed script through :func:`test_generated_calls.run_call`
(a real pipeline, server and fault proxy) and checks every invariant with
:func:`test_generated_calls.check_call`. Each failed before its fix.
"""

from __future__ import annotations

import pytest
from test_generated_calls import (
    Audio,
    Dtmf,
    Interrupt,
    Pause,
    Restart,
    ServerClose,
    check_call,
    run_call,
)


@pytest.mark.parametrize("flavor", ["protobuf", "twilio", "asterisk"])
async def test_audio_overtaken_by_an_interruption_is_not_sent_after_it(flavor):
    """An InterruptionFrame jumps ahead of audio still in the output's input queue
    (Pipecat's queue serves system frames first). That audio was then sent after
    the interruption's clear, and not counted: 0.5 s of stale audio after a barge-in.
    """
    steps = [Audio(600, True), Audio(500, False), Interrupt(), Audio(30, False), Interrupt()]
    record = await run_call(flavor, steps, cancel=False, seed=1)
    check_call(record)
    assert record.stats.interrupted_audio_secs >= 0.5


@pytest.mark.parametrize("flavor", ["protobuf", "asterisk"])
async def test_an_interrupted_dtmf_tone_is_counted_whole(flavor):
    """A DTMF tone (played as audio without native DTMF) cut by an interruption:
    only its first chunk was counted; 0.46 s of it went nowhere."""
    steps = [Audio(300, False), Dtmf(), Pause(0.2), Interrupt(), Audio(100, False)]
    record = await run_call(flavor, steps, cancel=False, seed=1)
    check_call(record)
    assert record.stats.dropped_audio_secs == 0  # interrupted, not dropped
    assert record.stats.interrupted_audio_secs >= 0.45


@pytest.mark.parametrize("flavor", ["protobuf", "asterisk"])
async def test_audio_before_a_dtmf_tone_is_heard_before_it(flavor):
    """The last partial chunk before a DTMF tone was held back and sent after the
    tone, joined to the next audio: out of order."""
    steps = [Audio(300, False), Dtmf(), Audio(200, True)]
    record = await run_call(flavor, steps, cancel=False, seed=1)
    check_call(record)


async def test_restart_behind_the_proxy_reconnects():
    """The server restarts behind the proxy: the redial's handshake ends in EOF,
    which was fatal (see also test_reconnect.py)."""
    steps = [Audio(300, True), Restart(0.2, True), Audio(300, True)]
    record = await run_call("protobuf", steps, cancel=False, seed=1)
    check_call(record)
    assert not record.errors
    assert record.stats.connects == 2


@pytest.mark.parametrize("flavor", ["protobuf", "asterisk"])
async def test_a_dtmf_tone_overtaken_by_an_interruption_is_not_played(flavor):
    """Shrunk by hypothesis to two steps: a DTMF key (a data frame) then an
    interruption that overtakes it in the output's queue. The whole tone was
    played after the interruption's clear (``FLUSH_MEDIA`` for Asterisk)."""
    record = await run_call(flavor, [Dtmf(), Interrupt()], cancel=False, seed=1)
    check_call(record)
    assert record.stats.audio_secs_sent == 0


async def test_a_hang_up_by_the_far_end_ends_the_call_before_the_audio_left():
    """Shrunk by the long profile (a defect of the test, kept as a check): the far
    end's 1000 close ends the call; the audio queued after it is not owed, and the
    call still ends cleanly, with no error reported."""
    record = await run_call("asterisk", [Dtmf(), ServerClose(1000), Dtmf()], cancel=False, seed=1)
    check_call(record)
    assert not record.errors and not record.connection_errors
