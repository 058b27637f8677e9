#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Per-turn response latency and barge-in reaction while a call goes on (pure, no I/O).

The browser phone shows what ``call`` measures after the fact, as it
happens. Both sides' audio is added with its playback time; :meth:`LiveTurns.poll`
(with ``now`` passed in, so a fake clock tests it) returns what became known:

- a turn once our utterance has ended (``min_silence`` of silence after it),
  then again once the bot's answer begins: the response latency is from the
  end of our utterance to the start of the bot's next stretch of speech;
- a barge-in once the bot stops after we spoke over it: the reaction is from
  our onset to the end of the bot's speech we talked over (again if the
  bot's ``clear`` comes after that).

The rules are those of :func:`turns` and
:func:`barge_ins` (the same thresholds and the
same 0.1 s joining of the bot's pauses), so the live figures agree with the
summary the call ends with.

Example::

    live = LiveTurns(8000)
    live.add_ours(mic_pcm, start=sent_at)
    live.add_theirs(bot_pcm, start=played_at)
    live.add_clear(clear_at)
    for update in live.poll(now=time.monotonic()):
        show(update)
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from pipecat_wsclient.audio.activity import VoiceActivity
from pipecat_wsclient.audio.levels import (
    MIN_SILENCE_SECS,
    MIN_SPEECH_SECS,
    WINDOW_SECS,
    speech_segments,
)


@dataclass
class Turn:
    """One exchange: our utterance and the first answer after it."""

    utterance_start: float
    utterance_end: float
    answer_start: float | None

    @property
    def latency(self) -> float | None:
        """Seconds from the end of our utterance to the first audible answer."""
        return None if self.answer_start is None else self.answer_start - self.utterance_end


def turns(sent: np.ndarray, heard: np.ndarray, rate: int, t0: float = 0.0) -> list[Turn]:
    """Pair each utterance in ``sent`` with the first answer onset in ``heard`` after its end.

    Both arrays are rendered tracks on the same timeline starting at ``t0``.
    An answer counts for a turn when it starts after the utterance ended and
    before the next utterance ends.
    """
    ours = speech_segments(sent, rate)
    answers = speech_segments(heard, rate, min_silence=0.1)
    result = []
    for i, u in enumerate(ours):
        limit = ours[i + 1].end if i + 1 < len(ours) else float("inf")
        onset = next((a.start for a in answers if u.end <= a.start < limit), None)
        result.append(Turn(t0 + u.start, t0 + u.end, None if onset is None else t0 + onset))
    return result


def barge_ins(sent: np.ndarray, heard: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """Where we started talking while the far end was talking, and when it stopped.

    Both arrays are rendered tracks on the same timeline. For each of our
    utterances that starts inside an answer (a stretch of the far end's
    speech, pauses under 0.1 s joined), the pair is our onset and the end of
    that answer, in seconds from the start of the arrays: the far end's
    reaction is the difference.
    """
    ours = speech_segments(sent, rate)
    answers = speech_segments(heard, rate, min_silence=0.1)
    found = []
    for u in ours:
        talked_over = next((a for a in answers if a.start < u.start < a.end), None)
        if talked_over is not None:
            found.append((u.start, talked_over.end))
    return found


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation, None if empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


ANSWER_GAP_SECS = 0.1
"""The bot's pauses shorter than this are inside one stretch of speech."""

CLEAR_SLACK_SECS = 0.05
"""A clear this long before our onset still counts for that barge-in."""

_EPS = 1e-6
"""Window times are sums of floats: a pause of exactly the gap must split, as in ``turns``."""


@dataclass
class TurnUpdate:
    """A turn, new or answered: our utterance's end and the bot's answer onset."""

    n: int
    utterance_start: float
    utterance_end: float
    answer_start: float | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from the end of our utterance to the answer's first voiced window."""
        return None if self.answer_start is None else self.answer_start - self.utterance_end


@dataclass
class BargeIn:
    """We spoke over the bot: our onset, when it stopped, when its clear came."""

    n: int
    onset: float
    stop: float
    clear: float | None

    @property
    def reaction(self) -> float:
        """Seconds from our onset to the end of the bot's speech we talked over."""
        return self.stop - self.onset


class LiveTurns:
    """Turns and barge-ins of one call, worked out as its audio comes in."""

    def __init__(
        self,
        rate: int,
        *,
        min_silence: float = MIN_SILENCE_SECS,
        min_speech: float = MIN_SPEECH_SECS,
    ):
        """Initialize with no audio.

        Args:
            rate: Sample rate of both sides (16-bit mono PCM).
            min_silence: Our pause that ends an utterance.
            min_speech: Our utterances shorter than this are ignored.
        """
        self.ours = VoiceActivity(rate)
        self.theirs = VoiceActivity(rate)
        self._min_silence = min_silence
        self._min_speech = min_speech
        self._cursor = float("-inf")  # our audio before this has been split into utterances
        self._onsets: set[float] = set()  # our onsets already judged for barge-in
        self._open: list[TurnUpdate] = []  # turns still waiting for an answer
        self._undecided: list[float] = []  # our onsets not yet judged for barge-in
        # Our onsets over the bot (with the start of its speech), waiting for it to stop.
        self._barge_ins: list[tuple[float, float]] = []
        self._clears: list[float] = []
        self._speaking_until: float | None = None  # our utterance in progress, so far
        self._updated: list[BargeIn] = []  # reported barge-ins whose clear came since
        self.turns: list[TurnUpdate] = []
        """Every turn so far, in order."""
        self.barge_ins: list[BargeIn] = []
        """Every resolved barge-in so far, in order."""

    def add_ours(self, pcm: bytes, start: float) -> None:
        """Add our audio whose first sample plays (reaches the bot) at ``start``."""
        self.ours.add(pcm, start)

    def add_theirs(self, pcm: bytes, start: float) -> None:
        """Add the bot's audio whose first sample plays at ``start``."""
        self.theirs.add(pcm, start)

    def add_clear(self, at: float) -> None:
        """Note a carrier ``clear`` from the bot at ``at`` (clears come in time order).

        A barge-in already reported without a clear gets this one if it came
        after its onset; :meth:`poll` reports it again.
        """
        self._clears.append(at)
        for barge_in in self.barge_ins:
            if barge_in.clear is None and at >= barge_in.onset - CLEAR_SLACK_SECS:
                barge_in.clear = at
                self._updated.append(barge_in)

    def poll(self, now: float) -> list[TurnUpdate | BargeIn]:
        """What became known by ``now``: new turns, answered turns, resolved barge-ins."""
        updates: list[TurnUpdate | BargeIn] = list(self._updated)
        self._updated.clear()
        self._split_utterances(now, updates)
        self._answer_turns(now, updates, until=self._speaking_until)
        self._decide_barge_ins(now)
        self._resolve_barge_ins(now, updates)
        return updates

    def _split_utterances(self, now: float, updates: list[TurnUpdate | BargeIn]) -> None:
        self._speaking_until = None
        while (onset := self.ours.onset_after(self._cursor)) is not None:
            if onset not in self._onsets:
                self._onsets.add(onset)
                self._undecided.append(onset)
            end = self.ours.end_of_run(onset, self._min_silence - _EPS, now + _EPS)
            if end is None:
                # Still speaking: an answer after what we have said so far may
                # belong to this utterance, not to the open turn; wait.
                self._speaking_until = self.ours.starts[-1] + WINDOW_SECS
                return
            self._cursor = end
            if end - onset < self._min_speech - _EPS:
                continue
            # An open turn whose next utterance has now ended gets no answer.
            self._answer_turns(now, updates, until=end)
            self._open.clear()
            turn = TurnUpdate(len(self.turns) + 1, onset, end)
            self.turns.append(turn)
            self._open.append(turn)
            updates.append(turn)

    def _answer_turns(
        self, now: float, updates: list[TurnUpdate | BargeIn], until: float | None = None
    ) -> None:
        for turn in list(self._open):
            onset = self._answer_onset(turn.utterance_end, until, now)
            if onset is not None:
                turn.answer_start = onset
                self._open.remove(turn)
                updates.append(turn)

    def _answer_onset(self, after: float, until: float | None, now: float) -> float | None:
        """The start of the bot's first stretch of speech starting in ``[after, until)``.

        A stretch shorter than ``min_speech`` (a click) is no answer; one that
        is still that short and may go on is not judged yet (None).
        """
        starts = self.theirs.starts
        i = bisect_left(starts, after - _EPS)
        while i < len(starts) and (until is None or starts[i] < until - _EPS):
            if i > 0 and starts[i] - (starts[i - 1] + WINDOW_SECS) < ANSWER_GAP_SECS - _EPS:
                i += 1  # inside a stretch that started earlier
                continue
            j = i  # the stretch's last window
            while j + 1 < len(starts) and (
                starts[j + 1] - (starts[j] + WINDOW_SECS) < ANSWER_GAP_SECS - _EPS
            ):
                j += 1
            end = starts[j] + WINDOW_SECS
            if end - starts[i] >= self._min_speech - _EPS:
                return starts[i]
            if j + 1 == len(starts) and now - end < ANSWER_GAP_SECS - _EPS:
                return None  # a short stretch that may still go on
            i = j + 1
        return None

    def _decide_barge_ins(self, now: float) -> None:
        """Whether we spoke over the bot, once its audio around our onset is in.

        The bot's pause at our onset joins its speech if it resumes within
        ``ANSWER_GAP_SECS``: the decision waits until that much has played.
        """
        for onset in list(self._undecided):
            if now < onset + ANSWER_GAP_SECS - _EPS:
                continue
            self._undecided.remove(onset)
            talked_over = self.theirs.run_start(onset, gap=ANSWER_GAP_SECS - _EPS)
            if talked_over is not None and talked_over < onset - _EPS:
                self._barge_ins.append((onset, talked_over))

    def _resolve_barge_ins(self, now: float, updates: list[TurnUpdate | BargeIn]) -> None:
        for item in list(self._barge_ins):
            onset, talked_over = item
            stop = self.theirs.end_of_run(onset, ANSWER_GAP_SECS - _EPS, now + _EPS)
            if stop is None:
                continue
            # Our utterance must be one (``min_speech``): its length, or so far,
            # since while it goes on every voiced window belongs to it.
            end = self.ours.end_of_run(onset, self._min_silence - _EPS, now + _EPS)
            ours = (self.ours.starts[-1] + WINDOW_SECS if end is None else end) - onset
            if ours < self._min_speech - _EPS:
                if end is not None:
                    self._barge_ins.remove(item)  # a blip, not an utterance
                continue
            self._barge_ins.remove(item)
            if stop - talked_over < self._min_speech - _EPS or stop < onset + _EPS:
                continue  # the bot's "speech" was a click, or ended as we began
            clear = next((t for t in self._clears if t >= onset - CLEAR_SLACK_SECS), None)
            barge_in = BargeIn(len(self.barge_ins) + 1, onset, stop, clear)
            self.barge_ins.append(barge_in)
            updates.append(barge_in)
