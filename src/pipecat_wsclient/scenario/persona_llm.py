#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A simulated caller's mind: Pipecat's ``EvalPersona`` played outside Pipecat's eval transport.

:class:`PersonaMind` owns the persona's LLM, as ``pipecat.evals`` builds it
from a scenario's ``simulator:`` block, running in a small pipeline of its
own, ``[persona.llm, text collector, LLMAssistantAggregator(persona.context)]``,
configured with the persona's instruction as Pipecat's eval client does. It is
told what the bot said and answers with the caller's next line; the persona
ends the call with its ``end_call`` tool, whose claim it reports::

    async with PersonaMind(
        "A polite caller in a hurry.",
        "Find out when the shop opens, then hang up.",
        {"service": "ollama", "endpoint": "http://localhost:11434/v1", "model": "gemma4:12b"},
    ) as mind:
        reply = await mind.reply(None)  # the bot said nothing yet: the caller speaks first
        reply = await mind.reply("Hello, Corner Shop, how can I help?")
        while reply.end_call is None:
            reply = await mind.reply(await bot_says(reply.text))
        print(reply.end_call)  # {"success": True, "reason": "..."}

Every failure of the persona's LLM (an error it reports, an HTTP error, no
complete answer in time, its pipeline stopping) is a :class:`PersonaError`
naming the simulator's service, model and endpoint, never its key.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loguru import logger
from pipecat.evals.persona import EvalPersona
from pipecat.evals.services import llm_service_from_config
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.settings import LLMSettings
from pipecat.workers.runner import WorkerRunner

DEFAULT_REPLY_TIMEOUT_SECS = 60.0
"""Seconds the persona may take to answer, by default."""

CONNECTED_MESSAGE = "(The call is connected. The other side has said nothing yet.)"
"""The persona's user message when it has to speak first."""

SILENCE_MESSAGE = "(The other side has said nothing since your last turn.)"
"""The persona's user message when the bot stayed silent after the persona spoke."""

_START_TIMEOUT_SECS = 10.0  # for the pipeline to start
_STOP_TIMEOUT_SECS = 5.0  # for a cancelled pipeline to end
_DEFAULT_OLLAMA_ENDPOINT = "http://localhost:11434/v1"  # pipecat.evals.services' default
_MAX_DETAIL = 300  # characters of an error's detail in a PersonaError


class PersonaError(RuntimeError):
    """The persona could not answer; the one-line message says which simulator and why."""


@dataclass(frozen=True)
class PersonaReply:
    """One turn of the persona.

    Attributes:
        text: What the persona says (stripped; empty when it only hung up).
        end_call: ``{"success": bool, "reason": str}`` when the persona hung up
            in this turn (its own claim, not a verdict), else ``None``.
        started_at: ``time.monotonic()`` when the persona was asked.
        ended_at: ``time.monotonic()`` when its response was complete.
    """

    text: str
    end_call: dict[str, Any] | None
    started_at: float
    ended_at: float


@dataclass
class _Turn:
    """One ``reply()`` in progress: what has arrived, and what is still owed."""

    started_at: float
    responses: int = 1  # LLM responses still to end: one, plus one per context pushed back
    calls: set[str] = field(default_factory=set)  # tool call ids without a result yet
    texts: list[list[str]] = field(default_factory=lambda: [[]])  # text per response
    errors: list[ErrorFrame] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        """Mark the turn done once every response has ended and every call has its result."""
        if self.responses <= 0 and not self.calls:
            self.done.set()

    @property
    def text(self) -> str:
        return " ".join(t for t in ("".join(parts).strip() for parts in self.texts) if t)


class _TextCollector(FrameProcessor):
    """Hands the LLM's text, and the start of each of its responses, to the mind."""

    def __init__(self, mind: PersonaMind):
        super().__init__()
        self._mind = mind

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        turn = self._mind._turn
        if turn is not None and direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMFullResponseStartFrame) and turn.texts[-1]:
                turn.texts.append([])
            elif isinstance(frame, LLMTextFrame):
                turn.texts[-1].append(frame.text)
        await self.push_frame(frame, direction)


class _TurnAggregator(LLMAssistantAggregator):
    """The persona's assistant aggregator, which also tells the mind when a turn is complete.

    The completion is judged here, at the end of the pipeline, after the
    aggregator has handled each frame: a function call result that makes it
    run the LLM again pushes the context upstream while it is handled, so the
    follow-up response is counted before the result is, and the turn is not
    declared complete between the two.
    """

    def __init__(self, context: LLMContext, mind: PersonaMind):
        super().__init__(context)
        self._mind = mind

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        turn = self._mind._turn
        if turn is None or direction != FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, LLMFullResponseEndFrame):
            turn.responses -= 1
        elif isinstance(frame, FunctionCallsStartedFrame):
            turn.calls.update(call.tool_call_id for call in frame.function_calls)
        elif isinstance(frame, (FunctionCallResultFrame, FunctionCallCancelFrame)):
            turn.calls.discard(frame.tool_call_id)
        turn.check()

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        turn = self._mind._turn
        if turn is not None and direction == FrameDirection.UPSTREAM:
            if isinstance(frame, LLMContextFrame):
                turn.responses += 1  # the LLM runs again on it
        await super().push_frame(frame, direction)


class PersonaMind:
    """Plays a :class:`~pipecat.evals.persona.EvalPersona` with its LLM in a pipeline of its own.

    After the persona hangs up (calls ``end_call``), :meth:`reply` raises
    :class:`PersonaError` ("the persona has hung up"): a caller that has hung
    up says nothing more. After a reply that timed out or was cancelled, or an
    error that left the LLM unusable, every later :meth:`reply` raises too,
    since a response may still be arriving or none ever will. A reply that
    failed with an error the LLM reported (an HTTP 500, say) leaves the mind
    usable: the next :meth:`reply` asks again, with what was heard since.
    """

    def __init__(self, description: str, goal: str, simulator: dict[str, Any] | None = None):
        """Build the persona's LLM and the persona; nothing runs until :meth:`start`.

        Args:
            description: Who the caller is, as free text.
            goal: What the caller wants from the call.
            simulator: The persona LLM's config, as a scenario's ``simulator:``
                block (``service``/``factory``, ``model``, ``endpoint``,
                ``extra``); ``None`` for Pipecat's default local Ollama model.

        Raises:
            ValueError: If the config names an unknown service or a bad factory.
        """
        self._config = dict(simulator or {})
        llm: LLMService[Any] = llm_service_from_config(self._config, where="simulator")
        self._persona = EvalPersona(description, goal, llm)
        self._persona.on_end_call(self._on_end_call)
        self._where = _describe(self._config, llm)
        self._secrets = [str(v) for k, v in self._config.items() if "key" in k.lower() and v]
        self._end_call: dict[str, Any] | None = None
        self._turn: _Turn | None = None
        self._broken: str | None = None
        self._worker: PipelineWorker | None = None
        self._runner: WorkerRunner | None = None
        self._run: asyncio.Future[None] | None = None
        self._started = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None

        @llm.event_handler("on_error")
        async def on_error(_llm: LLMService[Any], frame: ErrorFrame) -> None:
            # Called before the LLM ends its response, so the turn sees it.
            self._note_error(frame)

    @property
    def persona(self) -> EvalPersona:
        """The persona: its instruction, LLM and context."""
        return self._persona

    @property
    def where(self) -> str:
        """The simulator, as error messages name it (service, model, endpoint; no key)."""
        return self._where

    @property
    def end_call(self) -> dict[str, Any] | None:
        """The persona's ``end_call`` claim, ``{"success", "reason"}``, once it has hung up."""
        return self._end_call

    @property
    def hung_up(self) -> bool:
        """Whether the persona has ended the call."""
        return self._persona.hung_up

    async def start(self) -> None:
        """Start the pipeline with the persona's instruction; idempotent.

        Raises:
            PersonaError: If the pipeline does not start, or the mind is closed.
        """
        if self._closed.is_set():
            raise PersonaError(f"persona LLM ({self._where}): closed")
        if self._run is not None:
            return
        pipeline = Pipeline(
            [
                self._persona.llm,
                _TextCollector(self),
                _TurnAggregator(self._persona.context, self),
            ]
        )
        worker = PipelineWorker(
            pipeline, params=PipelineParams(), enable_rtvi=False, idle_timeout_secs=None
        )
        self._worker, self._runner = worker, WorkerRunner(handle_sigint=False)

        @worker.event_handler("on_pipeline_started")
        async def on_pipeline_started(_worker: PipelineWorker, _frame: Frame) -> None:
            self._started.set()

        @worker.event_handler("on_pipeline_error")
        async def on_pipeline_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
            self._note_error(frame)

        # As pipecat.evals.client's _configure_persona: the instruction is a setting.
        instruction = LLMSettings(system_instruction=self._persona.instruction)
        await worker.queue_frame(LLMUpdateSettingsFrame(delta=instruction))
        await self._runner.add_workers(worker)
        self._run = asyncio.ensure_future(self._runner.run())
        await _first_of(self._run, events=(self._started,), timeout=_START_TIMEOUT_SECS)
        if not self._started.is_set():
            await self.close()
            raise PersonaError(f"persona LLM ({self._where}): its pipeline did not start")

    async def reply(
        self, heard: str | None, *, timeout: float = DEFAULT_REPLY_TIMEOUT_SECS
    ) -> PersonaReply:
        """The persona's next turn, after hearing ``heard``.

        Starts the mind if :meth:`start` was not called.

        Args:
            heard: What the bot said since the persona's last turn; ``None``
                (or blank) when it said nothing, so the persona speaks first
                (or again): its context gets :data:`CONNECTED_MESSAGE` before
                anything was said, :data:`SILENCE_MESSAGE` after.
            timeout: Seconds the whole response may take, any ``end_call``
                included.

        Returns:
            The persona's turn, once its response is complete.

        Raises:
            PersonaError: The persona has hung up, or its LLM failed (an
                error, no complete answer within ``timeout``, the pipeline
                stopped), or the mind is closed or already replying.
        """
        if self._persona.hung_up:
            raise PersonaError("the persona has hung up")
        if self._broken is not None:
            raise PersonaError(self._broken)
        if self._turn is not None:
            raise PersonaError(f"persona LLM ({self._where}): already replying")
        await self.start()
        assert self._worker is not None and self._run is not None
        if heard is None or not heard.strip():
            context = self._persona.context
            said = CONNECTED_MESSAGE if not context.get_messages() else SILENCE_MESSAGE
            context.add_message({"role": "user", "content": said})
            frame: LLMContextFrame | None = LLMContextFrame(context)
        else:
            frame = self._persona.hear({"type": "llm_response", "text": heard})
        if frame is None:  # only a hung-up persona hears nothing
            raise PersonaError("the persona has hung up")
        turn = self._turn = _Turn(started_at=time.monotonic())
        try:
            await self._worker.queue_frame(frame)
            await _first_of(self._run, events=(turn.done, self._closed), timeout=timeout)
        except asyncio.CancelledError:
            # The response may still be arriving: it would be taken for the next one's.
            self._broken = f"persona LLM ({self._where}): a reply was cancelled"
            raise
        finally:
            self._turn = None
        ended_at = time.monotonic()
        if turn.errors:
            details = "; ".join(dict.fromkeys(f.error for f in turn.errors))
            raise PersonaError(f"persona LLM ({self._where}) failed: {self._one_line(details)}")
        if not turn.done.is_set():
            if self._closed.is_set():
                raise PersonaError(f"persona LLM ({self._where}): closed while replying")
            if self._run.done():
                self._broken = f"persona LLM ({self._where}): its pipeline stopped"
            else:
                self._broken = (
                    f"persona LLM ({self._where}): no complete answer within {timeout:g} s"
                )
            raise PersonaError(self._broken)
        end_call = dict(self._end_call) if self._end_call is not None else None
        return PersonaReply(turn.text, end_call, turn.started_at, ended_at)

    async def close(self) -> None:
        """Stop the pipeline; idempotent, and bounded even when the LLM hangs."""
        if self._closing is None:
            self._closed.set()
            self._closing = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._closing)

    async def __aenter__(self) -> PersonaMind:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _stop(self) -> None:
        run = self._run
        if run is None or self._runner is None:
            return
        if not run.done():
            await self._runner.cancel(reason="persona closed")
            await asyncio.wait({run}, timeout=_STOP_TIMEOUT_SECS)
        if not run.done():
            logger.warning(f"persona LLM ({self._where}): the pipeline did not end; cancelling it")
            run.cancel()
            await asyncio.wait({run}, timeout=_STOP_TIMEOUT_SECS)
        if run.done() and not run.cancelled():
            run.exception()  # retrieved: how a stopped pipeline ended does not matter

    async def _on_end_call(self, params: FunctionCallParams) -> None:
        """The persona's ``end_call``: note its claim, as pipecat's simulation driver does."""
        arguments = params.arguments or {}
        self._end_call = {
            "success": bool(arguments.get("success", False)),
            "reason": str(arguments.get("reason", "")),
        }
        self._persona.hang_up()
        # The call is the persona's last word: no follow-up response.
        await params.result_callback(
            {"status": "call ended"}, properties=FunctionCallResultProperties(run_llm=False)
        )

    def _note_error(self, frame: ErrorFrame) -> None:
        """Keep an error for the turn in progress; an unusable LLM breaks the mind."""
        turn = self._turn
        if turn is not None and not any(f is frame for f in turn.errors):
            turn.errors.append(frame)
        elif turn is None:
            logger.warning(f"persona LLM ({self._where}): {self._one_line(frame.error)}")
        processor = frame.processor
        if processor is not None and not processor.is_usable and self._broken is None:
            self._broken = (
                f"persona LLM ({self._where}) is unusable after: {self._one_line(frame.error)}"
            )

    def _one_line(self, text: str) -> str:
        """An error's detail on one line, shortened, with any key in it hidden."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = re.sub(r"\b(sk-|Bearer\s+)[\w.\-]{6,}", r"\1***", text)
        text = " ".join(text.split())
        return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


async def _first_of(
    run: asyncio.Future[None], *, events: tuple[asyncio.Event, ...], timeout: float
) -> None:
    """Wait until ``run`` ends, one of ``events`` is set, or ``timeout`` seconds pass."""
    waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(e.wait()) for e in events}
    try:
        await asyncio.wait({run, *waits}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _describe(config: dict[str, Any], llm: LLMService[Any]) -> str:
    """The simulator as an error names it: ``ollama model 'fake' at http://host:port/v1``."""
    model = getattr(llm.settings, "model", None)
    named = f" model {model!r}" if isinstance(model, str) and model else ""
    if config.get("factory"):
        what = f"factory {config['factory']}"
    else:
        what = str(config.get("service", "ollama")).lower()
    endpoint = config.get("endpoint") or (_DEFAULT_OLLAMA_ENDPOINT if what == "ollama" else None)
    return f"{what}{named}" + (f" at {_public_url(str(endpoint))}" if endpoint else "")


def _public_url(url: str) -> str:
    """``url`` without credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "an endpoint that is not a URL"
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) if netloc else url
