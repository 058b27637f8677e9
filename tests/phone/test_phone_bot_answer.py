"""The phone bot's answer mode (``?bot=answer``), called as Twilio through our transport.

``support/phone_bot.py`` runs Pipecat's Silero VAD and our eSpeak NG TTS on
Pipecat's ``FastAPIWebsocketTransport``; we call it with
``WebsocketClientTransport`` and ``TwilioCarrierSerializer``, speak eSpeak NG
speech on a real-time line (silence between utterances, as a carrier streams
it) and time what comes back on the monotonic clock, which the bot's
``REPORT`` lines share.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import soxr
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, OutputDTMFUrgentFrame

from harness import RATE, RunningPipeline, make_transport, run_pipeline, wait_for
from pipecat_wsclient.protocols import TwilioCarrierSerializer
from pipecat_wsclient.protocols.carrier import BotEvent, Clear
from pipecat_wsclient.scenario.espeak import espeak_synthesize
from support.processes import PhoneBot, phone_bot

pytestmark = pytest.mark.slow  # a phone bot in a subprocess

CHUNK_SECS = 0.02
SILENCE = bytes(2 * int(RATE * CHUNK_SECS))
VOICE_RMS = 300.0  # eSpeak NG speech is ~2000-7000 RMS; mu-law silence is 0
QUIET_SECS = 0.8  # no voice for this long: the answer is over
QUESTION = "What are your opening hours?"
DEFAULT_ANSWER = "We are open from nine to five, Monday to Friday."
STOP_SECS = 0.3  # the bot's default VAD stop_secs
ANSWER_SECS = (2.0, 5.0)  # the default answer, spoken
PATH_SECS = 0.6  # the most the audio path and the VAD may add to delay + stop_secs (~0.3)


def speech(text: str) -> bytes:
    pcm, rate = espeak_synthesize(text)
    return soxr.resample(np.frombuffer(pcm, "<i2"), rate, RATE).astype("<i2").tobytes()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(float)
    return float(np.sqrt((samples**2).mean())) if len(samples) else 0.0


class ClearTimingTwilio(TwilioCarrierSerializer):
    """Twilio, noting when each ``clear`` from the bot arrives."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.clears: list[float] = []

    async def decode(self, data: str | bytes) -> BotEvent | None:
        event = await super().decode(data)
        if isinstance(event, Clear):
            self.clears.append(time.monotonic())
        return event


@dataclass
class Utterance:
    """Something the caller said: when its voice (by energy) began and ended on our side."""

    chunks_left: int
    onset: float | None = None
    end: float | None = None
    said: asyncio.Event = field(default_factory=asyncio.Event)


class PhoneLine:
    """The caller's microphone: 20 ms every 20 ms, silence unless saying something.

    Paced against an absolute schedule, as a carrier streams a call; the times
    are those at which a chunk is handed to the transport (which sends it at
    once: it is never ahead of real time).
    """

    def __init__(self, p: RunningPipeline):
        self._p = p
        self._chunks: deque[tuple[bytes, Utterance]] = deque()

    def say(self, pcm: bytes) -> Utterance:
        size = len(SILENCE)
        pcm += bytes(-len(pcm) % size)
        chunks = [pcm[i : i + size] for i in range(0, len(pcm), size)]
        utterance = Utterance(chunks_left=len(chunks))
        self._chunks.extend((chunk, utterance) for chunk in chunks)
        return utterance

    async def run(self) -> None:
        start = time.monotonic()
        sent = 0
        while True:
            chunk, utterance = self._chunks.popleft() if self._chunks else (SILENCE, None)
            now = time.monotonic()
            await self._p.send(OutputAudioRawFrame(chunk, RATE, 1))
            if utterance is not None:
                if rms(chunk) > VOICE_RMS:
                    utterance.onset = utterance.onset or now
                    utterance.end = now + CHUNK_SECS
                utterance.chunks_left -= 1
                if utterance.chunks_left == 0:
                    utterance.said.set()
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * CHUNK_SECS - time.monotonic()))


@dataclass
class Call:
    p: RunningPipeline
    line: PhoneLine
    serializer: ClearTimingTwilio
    conn: int

    def voice(self, after: float = 0.0) -> list[tuple[float, float]]:
        """The bot's non-silent audio heard after ``after``: (arrival time, seconds)."""
        return [
            (t, len(f.audio) / (2 * RATE))
            for t, f in self.p.collector.frames
            if t > after and isinstance(f, InputAudioRawFrame) and rms(f.audio) > VOICE_RMS
        ]

    async def heard_answer(self, after: float, timeout: float = 10.0) -> tuple[float, float]:
        """Wait for the bot's next answer to be heard in full; its first and last voice."""
        await wait_for(lambda: self.voice(after), timeout)

        def over() -> bool:
            last, secs = self.voice(after)[-1]
            return time.monotonic() - (last + secs) > QUIET_SECS

        await wait_for(over, timeout)
        voice = self.voice(after)
        return voice[0][0], voice[-1][0] + voice[-1][1]

    def reports(self, bot: PhoneBot, event: str) -> list[dict]:
        return bot.reports(self.conn, event)


@contextlib.asynccontextmanager
async def call(bot: PhoneBot, query: str) -> AsyncIterator[Call]:
    """Dial the bot as Twilio with the line open (silence); hang up at the end if it did not."""
    serializer = ClearTimingTwilio()
    transport = make_transport(f"{bot.uri}?{query}", serializer=serializer, audio_out_10ms_chunks=2)
    async with run_pipeline(transport) as p:
        line = PhoneLine(p)
        sending = asyncio.create_task(line.run())
        try:
            await wait_for(lambda: bot.conn_of(serializer.stream_sid) is not None, 10)
            conn = bot.conn_of(serializer.stream_sid)
            assert conn is not None
            await asyncio.sleep(0.3)  # a moment of line silence first
            yield Call(p, line, serializer, conn)
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        if not p.task.done():
            await p.end()
    assert not p.errors


@pytest.fixture(scope="module")
def bot() -> Iterator[PhoneBot]:
    with phone_bot() as running:
        yield running


@pytest.mark.parametrize("delay", [0.5, 1.0])
async def test_the_bot_answers_after_delay_plus_stop_secs(bot: PhoneBot, delay: float):
    async with call(bot, f"bot=answer&delay={delay}") as c:
        asked = c.line.say(speech(QUESTION))
        await asked.said.wait()
        first, last = await c.heard_answer(after=0.0)
        assert asked.onset and asked.end
        # nothing came back while we spoke: no echo
        assert first > asked.end, (first, asked.end)
        gap = first - asked.end
        expected = delay + STOP_SECS
        # the bot's view, on the same clock
        (started,) = c.reports(bot, "user-started-speaking")
        (stopped,) = c.reports(bot, "user-stopped-speaking")
        (requested,) = c.reports(bot, "answer-requested")
        (answered,) = c.reports(bot, "answer-started")
        print(
            f"delay={delay}: answer {gap:.3f} s after our speech (delay+stop_secs {expected}); "
            f"bot: VAD stop {stopped['time'] - asked.end:.3f} s after our speech, "
            f"answer out {answered['time'] - stopped['time']:.3f} s after it, "
            f"heard {first - answered['time']:.3f} s later; answer {last - first:.2f} s"
        )
        # On top of delay + stop_secs: Silero's confidence trails the speech (~0.06 s)
        # and the 16 -> 8 -> 16 kHz path has two soxr stream resamplers each way
        # (ours and Pipecat's, ~0.1 s of holdback each): ~0.3 s in all.
        assert expected - 0.1 <= gap <= expected + PATH_SECS, (gap, expected)
        assert ANSWER_SECS[0] <= last - first <= ANSWER_SECS[1], last - first

        assert asked.onset < started["time"] < asked.end
        assert delay <= requested["time"] - stopped["time"] < delay + 0.1
        assert delay <= answered["time"] - stopped["time"] < delay + 0.2
        assert answered["text"] == requested["text"] == DEFAULT_ANSWER
        assert answered["time"] <= first
        (bot_started,) = c.reports(bot, "bot-started-speaking")
        (bot_stopped,) = c.reports(bot, "bot-stopped-speaking")
        assert bot_started["time"] <= answered["time"] < bot_stopped["time"]
        # Pipecat reports the stop once its output has gone quiet, around when
        # the answer's last (unvoiced) audio plays here.
        assert bot_stopped["time"] < last + 0.6
        assert not c.reports(bot, "interrupted")


async def test_talking_over_the_answer_clears_it(bot: PhoneBot):
    async with call(bot, "bot=answer") as c:
        await c.line.say(speech(QUESTION)).said.wait()
        await wait_for(lambda: c.voice(), 10)
        answer_heard = c.voice()[0][0]
        await asyncio.sleep(max(0.0, answer_heard + 0.8 - time.monotonic()))
        over = c.line.say(speech("Sorry, can you say that again?"))
        await wait_for(lambda: c.serializer.clears, 3)
        assert over.onset
        reaction = c.serializer.clears[0] - over.onset
        await wait_for(lambda: c.reports(bot, "interrupted"), 2)  # reported after the clear
        (interrupted,) = c.reports(bot, "interrupted")
        (started,) = [
            r for r in c.reports(bot, "user-started-speaking") if r["time"] > answer_heard
        ]
        print(
            f"barge-in: clear {reaction:.3f} s after our speech onset (bot VAD start "
            f"{started['time'] - over.onset:.3f} s, interruption "
            f"{interrupted['time'] - started['time']:.3f} s after it); "
            f"{c.serializer.playback.cleared_bytes / (2 * RATE):.2f} s of queued answer dropped"
        )
        assert reaction <= 1.0, reaction
        assert interrupted["n"] == 1
        await over.said.wait()
        assert over.end
        # the answer stopped: silence from the clear until the bot's next answer
        cleared = c.serializer.clears[0]
        await asyncio.sleep(max(0.0, over.end + STOP_SECS + 0.3 - time.monotonic()))
        heard_after = [t for t, _ in c.voice(after=cleared + 0.05) if t < over.end + STOP_SECS]
        assert heard_after == [], heard_after[:3]
        first_answer = [t for t, _ in c.voice() if t < cleared]
        assert first_answer[-1] - first_answer[0] < 1.6  # less than the whole answer
        # and it answers the new utterance in full
        first, last = await c.heard_answer(after=over.end)
        assert ANSWER_SECS[0] <= last - first <= ANSWER_SECS[1]
        assert [r["n"] for r in c.reports(bot, "answer-started")] == [1, 2]


async def test_with_interrupt_off_the_answer_plays_on(bot: PhoneBot):
    # a long delay keeps the answer to our second utterance apart from the first
    async with call(bot, "bot=answer&interrupt=0&delay=2") as c:
        await c.line.say(speech(QUESTION)).said.wait()
        await wait_for(lambda: c.voice(), 10)
        answer_heard = c.voice()[0][0]
        await asyncio.sleep(max(0.0, answer_heard + 0.8 - time.monotonic()))
        over = c.line.say(speech("Sorry, can you say that again?"))
        first, last = await c.heard_answer(after=0.0)
        assert ANSWER_SECS[0] <= last - first <= ANSWER_SECS[1]  # in full
        assert not c.serializer.clears and not c.reports(bot, "interrupted")
        assert over.onset and over.onset < last  # we did talk over it
        # Ours and the one over the answer (a pause inside it may count twice).
        assert len(c.reports(bot, "user-started-speaking")) >= 2


async def test_dtmf_digits_get_one_answer(bot: PhoneBot):
    async with call(bot, "bot=answer") as c:
        await c.p.send(OutputDTMFUrgentFrame(button=KeypadEntry.ONE))
        await asyncio.sleep(0.2)
        await c.p.send(OutputDTMFUrgentFrame(button=KeypadEntry.TWO))
        first, last = await c.heard_answer(after=0.0)
        assert 0.5 <= last - first <= 3.0, last - first
        await asyncio.sleep(1.0)  # no second answer comes
        assert [r["digit"] for r in c.reports(bot, "dtmf")] == ["1", "2"]
        (requested,) = c.reports(bot, "answer-requested")
        assert requested["text"] == "You pressed 1 2."
        # once no digit has come for 0.5 s
        second = c.reports(bot, "dtmf")[1]["time"]
        assert 0.5 <= requested["time"] - second < 0.65
        assert len(c.reports(bot, "answer-started")) == 1
        assert not c.reports(bot, "user-started-speaking")  # DTMF is not speech


async def test_the_bot_hangs_up_after_its_answer(bot: PhoneBot):
    async with call(bot, "bot=answer&hangup_after=1") as c:
        await c.line.say(speech(QUESTION)).said.wait()
        await c.p.wait(15)  # the bot closes: our pipeline ends by itself
        ended = time.monotonic()
        voice = c.voice()
        first, last = voice[0][0], voice[-1][0] + voice[-1][1]
        assert ANSWER_SECS[0] <= last - first <= ANSWER_SECS[1]  # heard in full first
        (hung_up,) = c.reports(bot, "hung-up")
        assert hung_up["answers"] == 1
        print(
            f"hang-up: bot {hung_up['time'] - last:.3f} s after the answer's end, "
            f"our pipeline ended {ended - last:.3f} s after it"
        )
        assert last <= hung_up["time"] <= last + 1.0  # once the answer was heard
        await wait_for(lambda: c.reports(bot, "finished"), 5)
        assert not c.reports(bot, "disconnected")  # the bot hung up, not us
