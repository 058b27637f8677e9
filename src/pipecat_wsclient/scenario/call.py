#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One scripted call, turn by turn: :class:`VoiceCall`.

One job: the turns. Each turn method (``say``, ``play``, ``barge_in``,
``dtmf``, ``listen``, ``wait``, ``hangup``) does its step, waits for what
it needs (our speech sent, the answer's start, its end) and returns a
:class:`TurnResult` with what it measured and notes on what went wrong.
The call's audio, its timelines and the waits on them are the line's
(:class:`~pipecat_wsclient.scenario.line.Line`, composed as ``call.line``).
Transcripts are made on demand (:meth:`VoiceCall.transcribe`).

Example::

    async with VoiceCall("ws://127.0.0.1:8765/ws", protocol="twilio") as call:
        answer = await call.say("What are your opening hours?")
        print(answer.response_ms, await call.transcribe(answer))
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pipecat_wsclient.audio.levels import STOP_SILENCE_SECS
from pipecat_wsclient.audio.track import Rendered
from pipecat_wsclient.audio.turns import Greeting, replay
from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.builder import LineOptions
from pipecat_wsclient.caller.outcome import EXIT_CODES, EXIT_LOST
from pipecat_wsclient.caller.webhook import (
    as_stream_uri,
    check_webhook,
    explain_refusal,
    is_webhook,
    through_webhook,
)
from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.scenario.figures import apply_turn_rules
from pipecat_wsclient.scenario.line import Line
from pipecat_wsclient.scenario.results import CallFailed, Transcript, TurnResult
from pipecat_wsclient.scenario.speech import Synthesizer, Transcriber

DTMF_GAP_SECS = 0.15
"""Time between two keys of one ``dtmf`` turn."""


class VoiceCall:
    """A call to a voice bot, driven turn by turn, measuring each turn.

    Use it as an async context manager (it connects on entry and hangs up on
    exit), or call :meth:`start` and :meth:`close`.

    Parameters of timing (seconds unless named ``_ms``): ``answer_timeout``
    for an answer to begin, ``answer_silence_ms`` of silence that ends an
    answer, ``max_answer_secs`` after which an answer is cut off.

    The audio and its timelines are ``call.line`` (a
    :class:`~pipecat_wsclient.scenario.line.Line`); ``caller``, ``transport``,
    ``rate``, ``heard``, ``heard_track``, ``sent_track``, ``sent_times``,
    ``carrier_events`` and ``failures`` are its objects, at hand on the call.
    """

    def __init__(
        self,
        uri: str,
        *,
        protocol: str = "pipecat",
        headers: dict[str, str] | None = None,
        sample_rate: int | None = None,
        synthesizer: Synthesizer | None = None,
        transcriber: Transcriber | None = None,
        answer_timeout: float = 10.0,
        answer_silence_ms: float = 800.0,
        stop_silence_ms: float = STOP_SILENCE_SECS * 1000,
        max_answer_secs: float = 60.0,
        open_timeout: float = 5.0,
        cafile: Path | None = None,
        insecure: bool = False,
        transcribe_answers: bool = False,
        auth_token: str | None = None,
    ):
        """Prepare the call (nothing is dialed until :meth:`start`).

        Args:
            uri: The bot's WebSocket endpoint, or with a carrier's protocol
                its webhook (``http://``, ``https://``): :meth:`start` asks it
                for the stream, as the carrier does.
            protocol: A ``--protocol`` of ``call``: ``pipecat``, ``raw``, ``twilio``...
            headers: Handshake headers.
            sample_rate: The pipeline's sample rate. None: a carrier's own rate
                (8000 for Twilio), so that no resampler delays what we hear
                and send; 16000 for ``pipecat`` and ``raw``.
            synthesizer: Speaks ``say`` text (default: eSpeak NG, cached).
            transcriber: Transcribes answers (default: Whisper, see :class:`Transcriber`).
            answer_timeout: Seconds allowed for an answer to begin.
            answer_silence_ms: Silence that ends an answer.
            stop_silence_ms: The bot's pause that means it stopped talking
                (where a barge-in's stop is dated: the start of that silence,
                or the bot's clear).
            max_answer_secs: An answer longer than this is cut off.
            open_timeout: Seconds allowed to connect.
            cafile: CA bundle to verify a ``wss://`` server with.
            insecure: Skip certificate verification.
            transcribe_answers: Transcribe each answer as its turn ends (so
                ``result.transcript`` is there when a turn returns); otherwise
                call :meth:`transcribe` when needed.
            auth_token: The carrier account's auth token, to sign the webhook
                and the stream's upgrade (None: the carrier's environment variable).

        Raises:
            ValueError: For an unknown protocol.
        """
        self.uri = uri
        self.answer_timeout = answer_timeout
        self.answer_silence = answer_silence_ms / 1000
        self.max_answer_secs = max_answer_secs
        self.synthesizer = synthesizer
        self.transcriber = transcriber
        self.transcribe_answers = transcribe_answers
        self._options = LineOptions(
            uri,
            protocol=protocol,
            sample_rate=sample_rate,
            headers=headers or {},
            cafile=cafile,
            insecure=insecure,
            open_timeout=open_timeout,
            stop_silence=stop_silence_ms / 1000,
            auth_token=auth_token,
        )
        if is_webhook(uri):
            check_webhook(uri, protocol, auth_token)
        self.notes: list[str] = []
        """What was done to reach the bot (its webhook's answer)."""
        # A webhook's stream is known once asked (start()): until then the
        # line stands ready for the webhook's host.
        placeholder = replace(self._options, uri=as_stream_uri(uri)) if is_webhook(uri) else None
        self._use(Line(placeholder or self._options))
        self.results: list[TurnResult] = []
        self.t0 = time.monotonic()
        self.ended_at: float | None = None
        self._hung_up = False
        self._pending_answer: TurnResult | None = None
        self._last_text: str | None = None

    def _use(self, line: Line) -> None:
        """Take ``line``'s parts as the call's attributes (the same objects)."""
        self.line = line
        self.caller, self.transport, self.rate = line.caller, line.caller.transport, line.rate
        self.heard, self.heard_track = line.heard, line.heard_track
        self.sent_track, self.sent_times = line.sent_track, line.sent_times
        self.carrier_events, self.failures = line.carrier_events, line.caller.failures

    # -- lifecycle ------------------------------------------------------------

    @property
    def hung_up_by_us(self) -> bool:
        """Whether we ended the call (:meth:`close`, :meth:`hangup`, a stop)."""
        return self._hung_up

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has dialed."""
        return self.caller.run_task is not None

    @property
    def connected_at(self) -> float | None:
        """When the call connected (None: it did not)."""
        return self.caller.connected_at

    @property
    def ended(self) -> bool:
        """Whether the call is over (hung up by either side, or lost)."""
        return self.line.ended

    async def start(self) -> None:
        """Dial and wait until connected.

        Raises:
            CallFailed: If the connection cannot be made (``exit_code`` as ``call``'s).
        """
        self.t0 = time.monotonic()
        if is_webhook(self._options.uri):
            try:
                options = await through_webhook(self._options)
            except ConnectionFailure as failure:
                code = EXIT_CODES.get(failure.kind, EXIT_LOST)
                raise CallFailed(str(failure), code, failure) from None
            self.notes = list(options.notes)
            self._use(Line(options))
        run = await self.caller.start()
        run.add_done_callback(self._note_end)
        await self.caller.connected_or_failed()
        if not self.caller.connected.is_set():
            await self.close()
            raise self._failure_error("the call could not be made")

    def _note_end(self, _task: asyncio.Task) -> None:
        self.ended_at = time.monotonic()

    def _failure_error(self, fallback: str) -> CallFailed:
        if self.failures:
            failure = explain_refusal(self.failures[-1], self.line.options)
            code = EXIT_CODES.get(failure.kind, EXIT_LOST) if failure.during_connect else EXIT_LOST
            return CallFailed(str(failure), code, failure)
        return CallFailed(fallback, EXIT_LOST)

    async def close(self) -> None:
        """Hang up (if the bot has not) and wait for the pipeline to end (15 s at most)."""
        if self.caller.run_task is None:
            return
        if not self.caller.ended:
            self._hung_up = True
        await self.caller.hang_up()

    async def __aenter__(self) -> VoiceCall:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- helpers --------------------------------------------------------------

    def _rel(self, t: float | None) -> float | None:
        return None if t is None else round(t - self.t0, 3)

    async def _audio(self, text: str | None, audio: Path | bytes | None) -> bytes:
        if text is not None:
            if self.synthesizer is None:
                self.synthesizer = Synthesizer()
            return await self.synthesizer.synthesize(text, self.rate)
        if isinstance(audio, bytes):
            return audio
        if audio is None:
            raise ValueError("nothing to say: give text or audio")
        return await asyncio.to_thread(read_wav, audio, self.rate)

    # -- answers --------------------------------------------------------------

    async def _await_end(self, onset: float) -> tuple[float, bool]:
        """Where the answer that began at ``onset`` ends; True if it was cut off."""
        return await self.line.await_end(onset, self.answer_silence, self.max_answer_secs)

    def _finish_answer(self, result: TurnResult, onset: float, end: float) -> None:
        result.answer_start_s = self._rel(onset)
        result.answer_end_s = self._rel(end)
        result.answer_secs = round(end - onset, 3)
        result.underruns = self.line.underruns(onset, end)

    async def _answer(
        self,
        result: TurnResult,
        after: float,
        timeout: float | None,
        until: str,
        since: float | None = None,
    ) -> TurnResult:
        early = self.line.heard.run_start(after) if since is not None else None
        if early is not None and since is not None and early >= since:
            # The bot began while we were still talking: its answer counts from
            # there, and response_ms is negative.
            onset: float | None = early
            result.notes.append(
                f"the bot began answering {(after - early) * 1000:.0f} ms before our speech ended"
            )
        else:
            onset = await self.line.await_onset(
                after, self.answer_timeout if timeout is None else timeout
            )
        if onset is None:
            result.notes.append(
                "the call ended before an answer"
                if self.ended
                else f"no answer within {self.answer_timeout if timeout is None else timeout:g} s"
            )
            return result
        result.response_ms = round((onset - after) * 1000, 1)
        result.answer_start_s = self._rel(onset)
        if until == "start":
            self._pending_answer = result
            return result
        end, cut = await self._await_end(onset)
        if cut:
            result.notes.append(f"the answer was cut off after {self.max_answer_secs:g} s")
        self._finish_answer(result, onset, end)
        return result

    def _begin(self, label: str, kind: str) -> tuple[TurnResult, float]:
        now = time.monotonic()
        result = TurnResult(label=label, kind=kind, started_s=round(now - self.t0, 3))
        self.results.append(result)
        if self.ended:
            why = str(self.failures[-1]) if self.failures else "the bot hung up"
            result.notes.append(f"the call had already ended ({why})")
        return result, now

    async def _done(self, result: TurnResult, started: float) -> TurnResult:
        result.marks, result.clears = self.line.carrier_counts(started, time.monotonic())
        if self.ended and not self._hung_up and not self.failures:
            result.bot_hung_up = True
        if self.transcribe_answers and result.answer_end_s is not None:
            await self.transcribe(result)
        elif self.transcribe_answers and result.answer_start_s is None:
            result.transcript = Transcript("")  # no answer: nothing said
        return result

    # -- turns ----------------------------------------------------------------

    async def say(
        self,
        text: str,
        *,
        timeout: float | None = None,
        until: Literal["end", "start"] = "end",
        label: str | None = None,
    ) -> TurnResult:
        """Say ``text`` (offline TTS) and wait for the bot's answer.

        Args:
            text: What to say.
            timeout: Seconds allowed for the answer to begin (default ``answer_timeout``).
            until: ``"end"``: return once the answer has ended; ``"start"``:
                return once it has begun (to :meth:`barge_in` on it).
            label: The turn's name in reports.

        Returns:
            The turn: ``response_ms``, the answer's times, and so on.
        """
        return await self._utter("say", label or text, text, None, timeout, until)

    async def play(
        self,
        audio: Path | bytes,
        *,
        timeout: float | None = None,
        until: Literal["end", "start"] = "end",
        label: str | None = None,
    ) -> TurnResult:
        """Play a WAV file (any rate) or PCM at the call's rate; wait for the answer.

        Args and returns as :meth:`say`.
        """
        name = label or (audio.name if isinstance(audio, Path) else f"{len(audio)} bytes")
        return await self._utter("play", name, None, audio, timeout, until)

    async def _utter(
        self,
        kind: str,
        label: str,
        text: str | None,
        audio: Path | bytes | None,
        timeout: float | None,
        until: str,
    ) -> TurnResult:
        pcm = await self._audio(text, audio)
        if text is not None:
            self._last_text = text
        await self._settle_pending()
        result, started = self._begin(label, kind)
        start, end = await self.line.speak(pcm)
        result.speech_start_s, result.speech_end_s = self._rel(start), self._rel(end)
        if end is None:
            result.notes.append("our speech was not sent" if not self.ended else "the call ended")
            return await self._done(result, started)
        await self._answer(result, end, timeout, until, since=start)
        return await self._done(result, started)

    async def _settle_pending(self) -> None:
        """Before a turn that is not a barge-in: let an answer left running finish."""
        pending, self._pending_answer = self._pending_answer, None
        if pending is not None and pending.answer_start_s is not None:
            onset = self.t0 + pending.answer_start_s
            end, _ = await self._await_end(onset)
            self._finish_answer(pending, onset, end)
            if self.transcribe_answers:
                await self.transcribe(pending)

    async def barge_in(
        self,
        after_ms: float,
        *,
        say: str | None = None,
        play: Path | bytes | None = None,
        timeout: float | None = None,
        label: str | None = None,
        reask: bool = True,
    ) -> TurnResult:
        """Talk over the bot's current answer, ``after_ms`` after it began.

        The answer talked over is the one a ``say``/``play``/``dtmf``/``listen``
        with ``until="start"`` left running. If the last answer has already
        ended (the turn before waited for its end) and ``reask`` is true, the
        last ``say`` text is said again and the barge-in talks over its new
        answer (that turn is in :attr:`results` too).

        Args:
            after_ms: When to start talking, from the answer's first audio.
            say: Text to say (offline TTS).
            play: Or a WAV file or PCM to play.
            timeout: Seconds allowed for the answer to what we said.
            label: The turn's name in reports.
            reask: Say the last text again when no answer is going on.

        Returns:
            The turn: ``barge_in_ms`` (our onset to the bot's audio stopping),
            ``clear_ms`` (carriers), then the answer to what we said.
        """
        pcm = await self._audio(say, play)
        target = self._pending_answer
        if target is None and reask:
            target = await self._reask()
        label = label or ("barge in: " + (say or "audio"))
        result, started = self._begin(label, "barge_in")
        self._pending_answer = None
        if target is None or target.answer_start_s is None:
            result.notes.append("there was no answer to talk over")
            return await self._done(result, started)
        onset = self.t0 + target.answer_start_s
        await self.line.wait_to_voice(onset + after_ms / 1000, pcm)
        ended = self.line.talk_end(onset, time.monotonic())
        if ended is not None:
            self._finish_answer(target, onset, ended)
            result.notes.append(
                f"the answer ended before the barge-in (it lasted {(ended - onset) * 1000:.0f} ms,"
                f" the barge-in was due after {after_ms:g} ms)"
            )
        ours, end = await self.line.speak(pcm)
        result.speech_start_s, result.speech_end_s = self._rel(ours), self._rel(end)
        if ours is not None and ended is None:
            stop = await self.line.await_stop(ours, self.max_answer_secs)
            result.barge_in_ms = round((stop - ours) * 1000, 1)
            clear = self.line.first_clear(ours - 0.05)
            if clear is not None:
                result.clear_ms = round((clear - ours) * 1000, 1)
            self._finish_answer(target, onset, stop)
        if self.transcribe_answers and target.answer_end_s is not None:
            await self.transcribe(target)
        if end is not None:
            await self._answer(result, end, timeout, "end")
        return await self._done(result, started)

    async def answer_outlasts(self, secs: float) -> bool:
        """Whether the answer a turn left running (``until="start"``) is still going ``secs`` in.

        Waits until ``secs`` after the answer began, or until it ends if sooner.

        Args:
            secs: Seconds from the answer's first audio.

        Returns:
            True if the bot is still talking then (a :meth:`barge_in` can talk
            over it); False if it ended, or if no answer is running.
        """
        pending = self._pending_answer
        if pending is None or pending.answer_start_s is None:
            return False
        onset = self.t0 + pending.answer_start_s
        deadline = onset + secs
        while time.monotonic() < deadline and not self.ended:
            if self.line.talk_end(onset, time.monotonic()) is not None:
                return False
            await self.line.sleep_until(min(deadline, time.monotonic() + 0.05))
        return not self.ended and self.line.talk_end(onset, time.monotonic()) is None

    async def finish_answer(self) -> TurnResult | None:
        """Let the answer a turn left running (``until="start"``) end; its turn, or None."""
        pending = self._pending_answer
        await self._settle_pending()
        return pending

    async def _reask(self) -> TurnResult | None:
        """Say the last utterance again and return when its answer has begun."""
        if self._last_text is None:
            return None
        text = self._last_text
        return await self.say(text, until="start", label=f"{text} (again)")

    async def dtmf(
        self,
        digits: str,
        *,
        timeout: float | None = None,
        until: Literal["end", "start"] = "end",
        label: str | None = None,
    ) -> TurnResult:
        """Press keys (0-9, *, #, A-D), 150 ms apart, and wait for the answer.

        ``response_ms`` is counted from the last key.
        """
        await self._settle_pending()
        result, started = self._begin(label or f"dtmf {digits}", "dtmf")
        for i, digit in enumerate(digits):
            if i:
                await asyncio.sleep(DTMF_GAP_SECS)
            await self.line.press_key(digit)
            result.dtmf_sent += digit
        last = time.monotonic()
        await self._answer(result, last, timeout, until)
        return await self._done(result, started)

    async def listen(
        self,
        timeout: float,
        *,
        until: Literal["end", "start"] = "end",
        label: str | None = None,
    ) -> TurnResult:
        """Say nothing and wait up to ``timeout`` for the bot to speak (a greeting)."""
        await self._settle_pending()
        result, started = self._begin(label or f"listen {timeout:g} s", "listen")
        await self._answer(result, started, timeout, until)
        return await self._done(result, started)

    async def wait(self, seconds: float, *, label: str | None = None) -> TurnResult:
        """Stay silent for ``seconds``; whatever the bot says meanwhile is the answer."""
        await self._settle_pending()
        result, started = self._begin(label or f"wait {seconds:g} s", "wait")
        await self.line.sleep_until(started + seconds)
        onset = self.line.heard.onset_after(started, until=started + seconds)
        if onset is not None:
            result.response_ms = round((onset - started) * 1000, 1)
            end, _ = await self._await_end(onset)
            self._finish_answer(result, onset, end)
        return await self._done(result, started)

    async def wait_for_hangup(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the bot to end the call; whether it did."""
        await self.line.sleep_until(time.monotonic() + timeout)
        return self.ended and not self._hung_up and not self.failures

    async def hangup(self) -> TurnResult:
        """End the call from our side (the carrier's stop, then a normal close)."""
        await self._settle_pending()
        result, started = self._begin("hangup", "hangup")
        await self.close()
        return await self._done(result, started)

    # -- after the fact -------------------------------------------------------

    def measure(self) -> Greeting | None:
        """Set the turns' figures by the turn engine's rules, as every command reports them.

        Run once the call has ended: the recorded call goes through the turn
        engine (:func:`~pipecat_wsclient.audio.turns.replay`) and each spoken
        turn's ``response_ms``, answer start, ``barge_in_ms`` and ``clear_ms``
        become the engine's (:mod:`pipecat_wsclient.scenario.figures`).

        Returns:
            The bot's greeting (its speech before our first utterance), or None.
        """
        clears = [t for t, kind in self.carrier_events if kind == "clear"]
        engine = replay(
            self.sent_track, self.heard_track, clears, stop_silence=self.line.stop_silence
        )
        return apply_turn_rules(self.results, engine, t0=self.t0)

    def answer_audio(self, result: TurnResult) -> bytes:
        """The bot's answer in a turn as it sent it (PCM at the call's rate), b"" if none.

        The chunks that played during the answer (from 0.1 s before it to 0.1 s
        after it), joined without the gaps late chunks left in the playback:
        what the bot said, for the transcript.
        """
        if result.answer_start_s is None:
            return b""
        start = self.t0 + result.answer_start_s - 0.1
        end = self.t0 + (result.answer_end_s or result.answer_start_s) + 0.1
        return self.line.heard_between(start, end)

    async def transcribe(self, result: TurnResult) -> str:
        """What the bot said in a turn's answer (also stored in ``result.transcript``)."""
        if result.transcript is None:
            pcm = self.answer_audio(result)
            if self.transcriber is None:
                self.transcriber = Transcriber()
            text = await self.transcriber.transcribe(pcm, self.rate) if pcm else ""
            result.transcript = Transcript(text)
        return result.transcript

    def render(self) -> Rendered | None:
        """The line's :meth:`~pipecat_wsclient.scenario.line.Line.render`: both sides."""
        return self.line.render()

    def write_recording(self, path: Path, rendered: Rendered | None = None) -> bool:
        """The line's :meth:`~pipecat_wsclient.scenario.line.Line.write_recording`."""
        return self.line.write_recording(path, rendered)

    def failure(self) -> CallFailed | None:
        """The connection failure that ended the call, if any."""
        return self._failure_error("lost") if self.failures else None
