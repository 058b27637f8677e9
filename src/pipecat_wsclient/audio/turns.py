#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The turn engine: greeting, turns, overlap, barge-ins and underruns of a call (pure, no I/O).

One :class:`TurnEngine` is fed both sides of a call: what we sent
(:meth:`~TurnEngine.add_ours`) and what we heard
(:meth:`~TurnEngine.add_theirs`), in chunks of any size at their playback
times, and the bot's carrier ``clear`` messages. It judges the audio in 20 ms
windows on one grid (from the first audio fed, or ``origin``); a window is
voiced when its level is above -40 dBFS. From the windows it works out:

- our utterances: voiced windows joined across pauses shorter than
  ``min_silence`` (0.3 s), at least ``min_speech`` (80 ms) long;
- the bot's stretches of speech: the same with pauses shorter than 0.1 s
  (where an answer, an overlap or the greeting begins);
- the bot's talk: its voiced windows joined across pauses shorter than
  ``stop_silence`` (0.5 s: ``STOP_SILENCE_SECS`` says why), ended at once by
  a carrier ``clear`` (what plays after a clear is new talk). The bot has
  stopped at the start of the silence that ends its talk;
- the greeting: the bot's stretches that start before our first utterance
  does (all of them if we never speak): its onset and end;
- a turn per utterance: its answer is the first fresh stretch that starts
  after the utterance ended and before our next utterance begins (the
  response latency is the gap); the overlap is the first fresh stretch that
  starts inside the utterance (the bot began before we had finished). A
  stretch is fresh when the bot was silent from our onset until it, or when
  it begins a new talk: words the bot goes on with after a short pause
  (it was talking when we began) are neither;
- a barge-in per utterance whose onset (its first voiced window) falls in
  the bot's talk (after its start, before its end, or before a clear that
  came from 50 ms before our onset on cut it): the bot stopped at the talk's
  end (never before our onset); its clear is the first ``clear`` from 50 ms
  before our onset on;
- underruns: the bot's audio that arrived 20-250 ms after the audio before
  it had finished playing (:func:`~pipecat_wsclient.audio.track.is_underrun`).

The same object gives the live figures and the final ones.
:meth:`~TurnEngine.poll` (``now`` passed in, so a fake clock tests it) judges
the windows that have played by ``now`` and reports each figure once it is
certain, never before it happened: a turn once the silence after our
utterance confirmed its end, its answer once the answer has played
``min_speech`` (a click is no answer), a barge-in once ``stop_silence`` of
the bot's silence (or its clear) confirmed its stop.
:meth:`~TurnEngine.finish` ends the call: the windows left are judged,
what was waiting is decided. What was reported is never changed afterwards,
but for a turn getting its answer and a barge-in its clear (both reported
again). :func:`replay` runs a recorded call through the
engine, as ``call`` does.

Example::

    live = TurnEngine(8000)
    live.add_ours(mic_pcm, start=sent_at)
    live.add_theirs(bot_pcm, start=played_at, arrival=received_at)
    live.add_clear(clear_at)
    for update in live.poll(now=time.monotonic()):
        show(update)
    ...
    live.finish()
    summary(live.turns, live.barge_ins, live.greeting, live.underruns)
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipecat_wsclient.audio.levels import (
    MIN_SILENCE_SECS,
    MIN_SPEECH_SECS,
    SPEECH_THRESHOLD_DB,
    STOP_SILENCE_SECS,
    WINDOW_SECS,
    voiced_edges,
    window_levels,
)
from pipecat_wsclient.audio.stretches import _Pending, _Stretch, _Stretches
from pipecat_wsclient.audio.track import Track, is_underrun
from pipecat_wsclient.audio.wav import pcm_to_float

ANSWER_GAP_SECS = 0.1
"""The bot's pauses shorter than this are inside one stretch of speech."""

_Judged = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Windows judged on one side: voiced flags, then where their voiced audio begins and ends."""

CLEAR_SLACK_SECS = 0.05
"""A clear this long before our onset still counts for that barge-in."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation, None if empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class TurnUpdate:
    """One turn: our utterance, the bot's answer onset, and where it began over us.

    Times are on the clock the audio was fed with (seconds).
    """

    n: int
    """The turn's number, from 1."""
    utterance_start: float
    utterance_end: float
    answer_start: float | None = None
    """The bot's first fresh speech after our utterance ended, before our next (None: none)."""
    overlap_start: float | None = None
    """The bot's first fresh speech that began inside our utterance (None: none)."""

    @property
    def latency(self) -> float | None:
        """Seconds from the end of our utterance to the answer's first voiced window."""
        return None if self.answer_start is None else self.answer_start - self.utterance_end

    @property
    def overlap(self) -> float | None:
        """Seconds the bot began speaking before our utterance ended (None: it waited)."""
        return None if self.overlap_start is None else self.utterance_end - self.overlap_start


@dataclass
class BargeIn:
    """We spoke over the bot: our onset, when it stopped, when its clear came."""

    n: int
    """The barge-in's number, from 1."""
    onset: float
    stop: float
    """When the bot stopped: the end of its talk we talked over (not before ``onset``)."""
    clear: float | None
    """The bot's first ``clear`` from ``CLEAR_SLACK_SECS`` before our onset (None: none yet)."""

    @property
    def reaction(self) -> float:
        """Seconds from our onset to the bot's stop."""
        return self.stop - self.onset


@dataclass
class Greeting:
    """The bot's speech before our first utterance: its first onset and its last end."""

    onset: float
    end: float


class TurnEngine:
    """Greeting, turns, overlap, barge-ins and underruns of one call, live and final.

    Feed each side's chunks in playback order, each starting no earlier than
    the end of the one before (as :class:`~pipecat_wsclient.audio.track.Track`
    places them), and nothing that plays before a ``now`` already polled.
    """

    def __init__(
        self,
        rate: int,
        *,
        min_silence: float = MIN_SILENCE_SECS,
        min_speech: float = MIN_SPEECH_SECS,
        stop_silence: float = STOP_SILENCE_SECS,
        origin: float | None = None,
    ):
        """Initialize with no audio.

        Args:
            rate: Sample rate of both sides (16-bit mono PCM).
            min_silence: Our pause that ends an utterance.
            min_speech: Utterances and stretches of the bot's speech shorter
                than this are ignored (clicks).
            stop_silence: The bot's pause that ends its talk (it stopped).
            origin: Where the 20 ms window grid starts; None: at the first
                audio fed.
        """
        self.rate = rate
        self.origin = origin
        """The start of the window grid (the first audio's playback time unless given)."""
        self._window = int(rate * WINDOW_SECS)  # samples, as window_levels counts them
        self._audio = (_Pending(), _Pending())  # ours, theirs
        # Per judged window and side: where its voiced audio begins and ends
        # (seconds from the window's start; NaN: not voiced).
        self._edges = ((array("d"), array("d")), (array("d"), array("d")))
        self._ours = _Stretches(min_silence, min_speech)
        self._theirs = _Stretches(ANSWER_GAP_SECS, min_speech)
        self._talk = _Stretches(stop_silence, min_speech)
        self._cuts = 0  # clears already applied to the talk
        self._end: float | None = None  # when the last audio fed finishes playing
        self._theirs_end: float | None = None
        self._clears: list[float] = []
        self._finished = False
        self._open: list[TurnUpdate] = []  # turns whose answer is not decided
        self._onsets: list[int] = []  # our onsets (windows) not yet judged for barge-in
        self._last_onset = -1
        self._onsets_seen = 0  # our ended utterances whose onset was taken
        self._greeted = False  # the greeting is decided
        self._updated: list[TurnUpdate | BargeIn] = []  # barge-ins whose clear came since
        self.turns: list[TurnUpdate] = []
        """Every turn so far, in order."""
        self.barge_ins: list[BargeIn] = []
        """Every resolved barge-in so far, in order."""
        self.greeting: Greeting | None = None
        """The greeting, once decided (None before, or if the bot never spoke first)."""
        self.underruns = 0
        """The bot's chunks that arrived 20-250 ms after the audio before them finished."""

    # -- what goes in -----------------------------------------------------------

    def add_ours(self, pcm: bytes, start: float) -> None:
        """Add our audio whose first sample plays (reaches the bot) at ``start``."""
        self._add(0, pcm, start)

    def add_theirs(self, pcm: bytes, start: float, arrival: float | None = None) -> None:
        """Add the bot's audio whose first sample plays at ``start``.

        Args:
            pcm: The audio, 16-bit mono PCM.
            start: When its first sample plays.
            arrival: When it arrived; given, a late arrival counts as an underrun.
        """
        if (
            arrival is not None
            and self._theirs_end is not None
            and is_underrun(arrival - self._theirs_end)
        ):
            self.underruns += 1
        self._theirs_end = start + len(pcm) / (2 * self.rate)
        self._add(1, pcm, start)

    def add_clear(self, at: float) -> None:
        """Note a carrier ``clear`` from the bot at ``at`` (clears come in time order).

        A barge-in already reported without a clear gets this one if it came
        after its onset (less ``CLEAR_SLACK_SECS``); the next poll reports it again.
        """
        self._clears.append(at)
        for barge_in in self.barge_ins:
            if barge_in.clear is None and at >= barge_in.onset - CLEAR_SLACK_SECS:
                barge_in.clear = at
                self._updated.append(barge_in)

    def _add(self, side: int, pcm: bytes, start: float) -> None:
        if self.origin is None:
            self.origin = start
        end = start + len(pcm) / (2 * self.rate)
        self._end = end if self._end is None else max(self._end, end)
        if pcm:
            at = round((start - self.origin) * self.rate)
            self._audio[side].add(at, pcm_to_float(pcm))

    # -- what comes out ---------------------------------------------------------

    def poll(self, now: float) -> list[TurnUpdate | BargeIn]:
        """What became known by ``now``: new turns, answered turns, barge-ins (or their clear).

        Turns and barge-ins are reported as the same objects as in
        :attr:`turns` and :attr:`barge_ins` (copy them to keep them as they were).
        """
        if not self._finished and self.origin is not None:
            self._judge(played=math.floor((now - self.origin) * self.rate) // self._window)
        return self._report()

    def finish(self) -> list[TurnUpdate | BargeIn]:
        """End the call: judge all the audio fed, decide what was waiting, report it."""
        if not self._finished:
            if self.origin is not None:
                self._judge(played=None)
            self._ours.finish()
            self._theirs.finish()
            # The bot's talk going on at the end: ended by silence, or by a clear
            # that came before the silence did (as polls past the end would find).
            while self.origin is not None and self._talk.open is not None:
                self._talk.push(False, self._cut_before(self._talk.count))
            self._talk.finish()
            self._finished = True
        return self._report()

    # -- windows ----------------------------------------------------------------

    def _judge(self, played: int | None) -> None:
        """Judge the windows that have played (all, if ``played`` is None).

        A window that has played holds its final audio: what is fed later plays
        after it. Windows only exist up to the end of the audio fed (a
        trailing part window is not one); past it, a window is judged only
        when silent on both sides, which is as good as absent, should the
        call end there.
        """
        assert self.origin is not None
        whole = 0 if self._end is None else int((self._end - self.origin) * self.rate)
        whole //= self._window  # windows that exist: the audio fed reaches their end
        k0 = self._ours.count
        k1 = whole if played is None else min(played, whole)
        if k1 > k0:
            self._push(*self._voiced(k0, k1))
        k0 = self._ours.count
        if played is not None and played > k0:
            ours, theirs = self._voiced(k0, played)
            voiced = ours[0] | theirs[0]
            silent = int(np.argmax(voiced)) if voiced.any() else len(voiced)
            self._push(ours, theirs, silent)
        for pending in self._audio:
            pending.forget(self._ours.count * self._window)

    def _voiced(self, k0: int, k1: int) -> tuple[_Judged, _Judged]:
        """Whether each window ``[k0, k1)`` is voiced, and its voiced edges: ours and theirs."""
        lo, hi = k0 * self._window, k1 * self._window
        judged = []
        for pending in self._audio:
            samples = pending.samples(lo, hi)
            voiced = window_levels(samples, self.rate) > SPEECH_THRESHOLD_DB
            judged.append((voiced, *voiced_edges(samples, self.rate, voiced)))
        return judged[0], judged[1]

    def _push(self, ours: _Judged, theirs: _Judged, n: int | None = None) -> None:
        """Judge the next ``n`` windows (all given if None)."""
        n = len(ours[0]) if n is None else n
        for side, (_, first, last) in zip(self._edges, (ours, theirs), strict=True):
            side[0].extend(first[:n].tolist())
            side[1].extend(last[:n].tolist())
        for o, t in zip(ours[0][:n].tolist(), theirs[0][:n].tolist(), strict=True):
            self._ours.push(o)
            self._theirs.push(t)
            self._talk.push(t, self._cut_before(self._talk.count))

    def _cut_before(self, k: int) -> float | None:
        """The last clear not applied yet that came by the start of window ``k``."""
        at = self._time(k) + 1e-9
        cut = None
        while self._cuts < len(self._clears) and self._clears[self._cuts] <= at:
            cut = self._clears[self._cuts]
            self._cuts += 1
        return cut

    def _time(self, k: int) -> float:
        """The start of window ``k``."""
        assert self.origin is not None
        return self.origin + k * WINDOW_SECS

    def _onset(self, side: int, k: int) -> float:
        """When the voiced audio of window ``k`` begins (a stretch's start), to the sub-window."""
        first = self._edges[side][0][k]
        return self._time(k) + (0.0 if math.isnan(first) else first)

    def _stop(self, side: int, end: int) -> float:
        """When the voiced audio of window ``end - 1`` ends (a stretch's end), to the sub-window."""
        last = self._edges[side][1][end - 1]
        return self._time(end - 1) + (WINDOW_SECS if math.isnan(last) else last)

    # -- the rules --------------------------------------------------------------

    def _report(self) -> list[TurnUpdate | BargeIn]:
        updates: list[TurnUpdate | BargeIn] = list(self._updated)
        self._updated.clear()
        self._new_turns(updates)
        self._answer_turns(updates)
        self._take_onsets()
        self._decide_barge_ins(updates)
        self._greet()
        unique: dict[int, TurnUpdate | BargeIn] = {}
        for update in updates:
            unique.setdefault(id(update), update)
        return list(unique.values())

    def _new_turns(self, updates: list[TurnUpdate | BargeIn]) -> None:
        """A turn for each utterance that ended, once the bot's speech inside it is known."""
        ours, theirs = self._ours, self._theirs
        while len(self.turns) < len(ours.done):
            u = ours.done[len(self.turns)]
            if not (self._finished or theirs.settled_before(u.end)):
                return
            over = None
            for s in self._stretches_from(u.start):
                if s.start >= u.end:
                    break  # it began after we had finished
                if self._fresh(s, u.start):
                    over = s
                    break
            turn = TurnUpdate(
                len(self.turns) + 1,
                self._onset(0, u.start),
                self._stop(0, u.end),
                overlap_start=None if over is None else self._onset(1, over.start),
            )
            self.turns.append(turn)
            self._open.append(turn)
            updates.append(turn)

    def _answer_turns(self, updates: list[TurnUpdate | BargeIn]) -> None:
        """Answer each open turn with the bot's first fresh stretch after it, once certain."""
        ours, theirs = self._ours, self._theirs
        for turn in list(self._open):
            i = turn.n - 1
            u = ours.done[i]
            going = ours.open  # our next utterance, if it is one (not yet known when short)
            limit = ours.done[i + 1].start if i + 1 < len(ours.done) else None
            if limit is None and going is not None and ours.long_enough(going):
                limit = going.start
            unsure = None if limit is not None or going is None else going.start
            answer: _Stretch | None = None
            decided = False
            for s in self._stretches_from(u.end):
                if limit is not None and s.start >= limit:
                    decided = True  # our next utterance began first: unanswered
                    break
                if unsure is not None and s.start >= unsure:
                    break  # wait: our speech before it may be an utterance
                if self._fresh(s, u.start):
                    answer, decided = s, True
                    break
            else:
                decided = self._finished or (limit is not None and theirs.settled_before(limit))
            if decided:
                self._open.remove(turn)
                if answer is not None:
                    turn.answer_start = self._onset(1, answer.start)
                    updates.append(turn)

    def _stretches_from(self, k: int) -> list[_Stretch]:
        """The bot's kept stretches starting at or after window ``k``, as far as known."""
        theirs = self._theirs
        found = theirs.done[bisect_left(theirs.starts, k) :]
        going = theirs.open_kept
        return [*found, going] if going is not None and going.start >= k else found

    def _fresh(self, s: _Stretch, since: int) -> bool:
        """Whether the bot's stretch ``s`` is new speech for our utterance begun at ``since``.

        It is when the bot was silent from ``since`` until it (no stretch of
        its speech ended after ``since``), or when it begins a new talk (the
        bot had stopped: ``stop_silence`` or a clear before it). Otherwise it
        goes on with what the bot was saying when we began: no answer, no overlap.
        """
        theirs, talk = self._theirs, self._talk
        i = bisect_left(theirs.starts, s.start)  # s's place among the ended stretches
        if i == 0 or theirs.done[i - 1].end <= since:
            return True
        j = bisect_left(talk.starts, s.start)
        if j < len(talk.done) and talk.done[j].start == s.start:
            return True
        return talk.open is not None and talk.open.start == s.start

    def _take_onsets(self) -> None:
        """Our utterances' onsets, to judge for barge-in, as soon as they are utterances."""
        ours = self._ours
        starts = [s.start for s in ours.done[self._onsets_seen :]]
        self._onsets_seen = len(ours.done)
        going = ours.open_kept
        if going is not None:
            starts.append(going.start)
        for start in starts:
            if start > self._last_onset:
                self._onsets.append(start)
                self._last_onset = start

    def _decide_barge_ins(self, updates: list[TurnUpdate | BargeIn]) -> None:
        """A barge-in for each onset of ours inside the bot's talk, once the talk ended."""
        talk = self._talk
        for onset in list(self._onsets):
            at = self._onset(0, onset)
            going = talk.open
            if going is not None and going.start < onset:
                # The bot's talk begun last before our onset has not ended (or
                # is a click): it, not one a clear cut before it, is what we
                # talked over.
                continue
            j = bisect_left(talk.starts, onset) - 1  # the last ended talk begun before it
            talked_over = None
            if j >= 0:
                s = talk.done[j]
                if s.end > onset or (s.cut is not None and s.cut >= at - CLEAR_SLACK_SECS):
                    talked_over = s
            if talked_over is None:
                self._onsets.remove(onset)
                continue
            self._onsets.remove(onset)
            clear = next((t for t in self._clears if t >= at - CLEAR_SLACK_SECS), None)
            stop = max(at, self._stop(1, talked_over.end))
            barge_in = BargeIn(len(self.barge_ins) + 1, at, stop, clear)
            self.barge_ins.append(barge_in)
            updates.append(barge_in)

    def _greet(self) -> None:
        """The greeting, once our first utterance began and the bot's speech before it ended."""
        if self._greeted:
            return
        ours, theirs = self._ours, self._theirs
        first = ours.done[0] if ours.done else ours.open_kept
        if first is None and not self._finished:
            return
        before = theirs.count if first is None else first.start
        going = theirs.open
        if going is not None and going.start < before:
            return
        said = theirs.done[: bisect_left(theirs.starts, before)]
        if said:
            self.greeting = Greeting(self._onset(1, said[0].start), self._stop(1, said[-1].end))
        self._greeted = True


LiveTurns = TurnEngine
"""The name the browser phone knows the engine by."""


def replay(
    sent: Track,
    heard: Track,
    clears: Iterable[float] = (),
    *,
    stop_silence: float = STOP_SILENCE_SECS,
) -> TurnEngine:
    """The final figures of a recorded call: both tracks fed at their playback times, finished.

    The window grid starts at the first chunk of either track; the heard
    track's arrival times count its underruns.

    Args:
        sent: Our audio, placed at its playback times (its rate is both sides').
        heard: The bot's audio, placed at its playback times.
        clears: When each carrier ``clear`` arrived, in order.
        stop_silence: The bot's pause that ends its talk.

    Returns:
        The engine after :meth:`TurnEngine.finish`.
    """
    firsts = [track.chunks[0][0] for track in (sent, heard) if track.chunks]
    engine = TurnEngine(
        sent.rate, stop_silence=stop_silence, origin=min(firsts) if firsts else None
    )
    for start, pcm in sent.chunks:
        engine.add_ours(pcm, start)
    for arrival, (start, pcm) in zip(heard.arrivals, heard.chunks, strict=True):
        engine.add_theirs(pcm, start, arrival=arrival)
    for at in clears:
        engine.add_clear(at)
    engine.finish()
    return engine
