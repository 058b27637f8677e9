#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The answering bot's one processor: a canned answer per utterance, DTMF read back.

:class:`Answerer` sits between a ``VADProcessor`` and a TTS service, as the
LLM and its aggregators would in a real bot::

    Pipeline([transport.input(), VADProcessor(vad_analyzer=SileroVADAnalyzer()),
              Answerer(AnswerOptions()), tts, transport.output()])

Each end of an utterance (the VAD's "user stopped speaking") is answered
``delay`` seconds later with ``answer``; each DTMF entry (digits less than
:data:`DTMF_GAP_SECS` apart) with ``dtmf_answer``. The caller speaking while
the bot is busy (an answer asked for or playing) interrupts it: Pipecat's
``InterruptionFrame`` drops the rest of the answer and the carrier's
serializer sends its ``clear``.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

DTMF_GAP_SECS = 0.5
"""Digits less than this apart are one entry, answered once."""

DEFAULT_ANSWER = "We are open from nine to five, Monday to Friday."
DEFAULT_DTMF_ANSWER = "You pressed {digits}."


@dataclass(frozen=True)
class AnswerOptions:
    """What the answering bot says, and when.

    Parameters:
        answer: What the bot says to each utterance.
        dtmf_answer: What it says to a DTMF entry; ``{digits}`` becomes the
            digits, space separated (``"1 2"``).
        delay: Seconds from the VAD's "user stopped speaking" to asking the
            TTS for the answer.
        stop_secs: The VAD's silence before "user stopped speaking".
        start_secs: The VAD's speech before "user started speaking" (so how
            soon the caller's speech interrupts an answer).
    """

    answer: str = DEFAULT_ANSWER
    dtmf_answer: str = DEFAULT_DTMF_ANSWER
    delay: float = 0.5
    stop_secs: float = 0.3
    start_secs: float = 0.2

    def __post_init__(self) -> None:
        """Check the options.

        Raises:
            ValueError: For an empty answer or a time that is negative or not finite.
        """
        if not self.answer.strip() or not self.dtmf_answer.strip():
            raise ValueError("the answers must not be empty")
        for name in ("delay", "stop_secs", "start_secs"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a time in seconds, not {value!r}")


class Answerer(FrameProcessor):
    """Answer each utterance and DTMF entry with speech; let the caller barge in.

    The caller's audio stops here (the bot never echoes). The bot counts as
    busy from asking for an answer until Pipecat's output says it stopped
    speaking (``BotStoppedSpeakingFrame``, which comes upstream to here).
    """

    def __init__(self, options: AnswerOptions | None = None, **kwargs):
        """Initialize the answerer.

        Args:
            options: What to say and when; ``AnswerOptions()`` by default.
            **kwargs: Passed to Pipecat's ``FrameProcessor``.
        """
        super().__init__(**kwargs)
        self._options = options or AnswerOptions()
        self._reply_task: asyncio.Task | None = None  # waiting `delay` after an utterance
        self._dtmf_task: asyncio.Task | None = None  # waiting for more digits
        self._digits: list[str] = []
        self._asked = False  # an answer asked of the TTS has not started playing
        self._speaking = False  # between the output's Bot{Started,Stopped}SpeakingFrame

    @property
    def busy(self) -> bool:
        """Whether an answer is asked for or playing (the caller's speech interrupts it)."""
        return self._asked or self._speaking

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer the VAD's and the caller's frames; drop the caller's audio.

        Args:
            frame: The frame.
            direction: Where it is going.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._user_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._cancel(self._reply_task)
            self._reply_task = self.create_task(self._reply_after_delay(), "reply")
        elif isinstance(frame, InputDTMFFrame):
            self._digits.append(str(frame.button.value))
            await self._cancel(self._dtmf_task)
            self._dtmf_task = self.create_task(self._reply_to_digits(), "dtmf-reply")
        elif isinstance(frame, BotStartedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self._asked, self._speaking = False, True
        elif isinstance(frame, BotStoppedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self._speaking = False
        await self.push_frame(frame, direction)

    async def cleanup(self):
        """Cancel the timers."""
        await super().cleanup()
        for task in (self._reply_task, self._dtmf_task):
            await self._cancel(task)

    async def _user_started(self) -> None:
        await self._cancel(self._reply_task)
        self._reply_task = None
        if self.busy:
            self._asked = self._speaking = False
            logger.debug(f"{self}: the caller spoke over the answer: interrupting")
            await self.broadcast_interruption()

    async def _reply_after_delay(self) -> None:
        await asyncio.sleep(self._options.delay)
        self._reply_task = None
        await self._say(self._options.answer)

    async def _reply_to_digits(self) -> None:
        await asyncio.sleep(DTMF_GAP_SECS)
        self._dtmf_task = None
        digits, self._digits = self._digits, []
        await self._say(self._options.dtmf_answer.replace("{digits}", " ".join(digits)))

    async def _say(self, text: str) -> None:
        self._asked = True
        logger.debug(f"{self}: answering {text!r}")
        await self.push_frame(TTSSpeakFrame(text))

    async def _cancel(self, task: asyncio.Task | None) -> None:
        if task is not None and task is not asyncio.current_task() and not task.done():
            await self.cancel_task(task)
