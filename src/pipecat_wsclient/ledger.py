#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Where the output's frames end up: sent, held, dropped or interrupted (pure, no I/O).

The output asks the ledger two questions before each send (is this frame
stale after an interruption? must it be held for a reconnection?) and tells
it what became of each frame, so the counters in
:class:`~pipecat_wsclient.stats.WebsocketClientStats` always add up. Log
lines are the caller's: methods that may warrant one return what to say, or
``None``, rate-limited on the clock passed in.

Example::

    ledger = OutputLedger(stats, OutageBuffer(2.0, 100))
    ledger.interrupt(before_id=obj_id())        # an InterruptionFrame
    if ledger.is_stale(frame.id, frame.interruptible):
        ledger.count_interrupted(secs)
    elif ledger.must_hold(session.is_reconnecting):
        ledger.outage.add(held)

The end silence (``audio_out_end_silence_secs`` after an ``EndFrame``) is
the transport's, not the bot's: sent, it is counted apart as well
(``end_silence_secs_sent``); not sent, it is ``end_silence_secs_unsent``,
never dropped audio. The invariant: the bot's audio handed to the output ==
``audio_secs_sent - end_silence_secs_sent + dropped_audio_secs +
interrupted_audio_secs``, within a chunk.
"""

from __future__ import annotations

from pipecat_wsclient.outage import DropReport, OutageBuffer
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.throttle import LogThrottle


class OutputLedger:
    """The output's bookkeeping of interruptions, outage holds and drops.

    Args:
        stats: The live counters to update.
        outage: The buffer that holds frames while the connection is down.
    """

    def __init__(self, stats: WebsocketClientStats, outage: OutageBuffer):
        self.stats = stats
        self.outage = outage
        # Interruptible frames with an id below this were queued before the
        # last interruption and must not be sent any more.
        self.interrupted_before_id = 0
        self._drop_log = LogThrottle()

    # -- interruptions -------------------------------------------------------

    def interrupt(self, before_id: int) -> None:
        """An interruption: frames with a lower id are stale; held ones are discarded.

        Args:
            before_id: A frame id newer than every frame queued so far.
        """
        self.interrupted_before_id = before_id
        self.stats.interrupted_audio_secs += self.outage.discard_interrupted(before_id)

    def is_stale(self, source_id: int, interruptible: bool) -> bool:
        """Whether a frame was queued before the last interruption and must not go out."""
        return interruptible and source_id < self.interrupted_before_id

    def count_interrupted(self, audio_secs: float) -> None:
        """Audio not sent because an interruption came first."""
        self.stats.interrupted_audio_secs += audio_secs

    # -- sent ------------------------------------------------------------------

    def count_sent_audio(self, audio_secs: float, *, end_silence: bool = False) -> None:
        """One chunk of audio went out.

        Args:
            audio_secs: Its duration.
            end_silence: Whether it is end silence (made by the transport, not the bot).
        """
        self.stats.audio_secs_sent += audio_secs
        self.stats.audio_frames_sent += 1
        if end_silence:
            self.stats.end_silence_secs_sent += audio_secs

    def count_unsent_end_silence(self, audio_secs: float) -> None:
        """End silence not sent (no connection, an outage, an interruption).

        Not dropped audio: the transport made it, and the bot's audio before
        it has been sent, dropped or interrupted and counted as such.
        """
        self.stats.end_silence_secs_unsent += audio_secs

    # -- held and dropped ------------------------------------------------------

    def must_hold(self, reconnecting: bool) -> bool:
        """Whether new frames go to the outage buffer (down, or it is not empty yet)."""
        return reconnecting or bool(self.outage)

    def count_dropped(self, audio_secs: float, now: float) -> int | None:
        """A frame that could not be sent nor held.

        Args:
            audio_secs: Its audio duration (0 for a message).
            now: The current time, for rate-limiting the log line.

        Returns:
            ``None`` when the caller should not log now, else how many drops
            went unlogged since the last line.
        """
        self.stats.dropped_frames += 1
        self.stats.dropped_audio_secs += audio_secs
        return self._drop_log.allow(now)

    def count_stale_tail(self, audio_secs: float) -> None:
        """The last partial chunk ended long before the end: dropped, not played late."""
        self.stats.dropped_frames += 1
        self.stats.dropped_audio_secs += audio_secs

    def abandon_outage(self) -> DropReport | None:
        """The connection is not coming back: everything held counts as dropped.

        Returns:
            What the outage cost, if anything was dropped.
        """
        self.outage.drop_all()
        return self.take_outage_report()

    def take_outage_report(self) -> DropReport | None:
        """Count what the outage buffer had to drop since the last report.

        Returns:
            The report to log once, or ``None`` if nothing was dropped.
        """
        report = self.outage.take_report()
        if not report:
            return None
        self.stats.dropped_frames += report.audio_frames + report.messages
        self.stats.dropped_audio_secs += report.audio_secs
        return report
