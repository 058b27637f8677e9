"""Scripted calls against bots that misbehave: each run ends in bounded time, and says why.

The peers are small WebSocket servers on 127.0.0.1 speaking the ``raw``
protocol (binary 16-bit PCM at 16 kHz): one that never answers, one that
talks without end, one that drops the connection (1011) mid-call, one that
sends junk between its answer's chunks.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from pipecat_wsclient.scenario.model import parse_scenario
from pipecat_wsclient.scenario.run import RunOptions, run_scenario

RATE = 16000
CHUNK = 2 * RATE // 50  # 20 ms


def tone(secs: float, freq: float = 440.0) -> bytes:
    n = int(RATE * secs)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n))
    )


@asynccontextmanager
async def bot(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


async def answer_after_speech(ws: ServerConnection, answer: Callable[[], Awaitable[None]]):
    """Wait for 2.5 s of audio from the caller (our speech, then silence), then answer."""
    heard = 0
    async for message in ws:
        if isinstance(message, bytes):
            heard += len(message)
            if heard >= 5 * RATE:
                await answer()
                heard = -(10**12)  # once


def scenario(**turn_expect: object) -> dict:
    return {
        "protocol": "raw",
        "answer_timeout": 1.5,
        "max_answer_secs": 2.0,
        "turns": [{"say": "What are your opening hours?", "expect": turn_expect}],
    }


async def run(uri: str, data: dict):
    started = time.monotonic()
    result = await run_scenario(parse_scenario(data), RunOptions(uri=uri, transcripts=False))
    return result, time.monotonic() - started


@pytest.mark.slow
async def test_a_bot_that_never_answers_fails_after_the_answer_timeout():
    async def silent(ws: ServerConnection):
        async for _ in ws:
            pass

    async with bot(silent) as uri:
        result, took = await run(uri, scenario(response_ms_max=1000))
    (turn,) = result.turns
    assert result.exit_code == 1
    assert turn.notes == ["no answer within 1.5 s"]
    assert turn.failures == ["response_ms: not measured (no answer within 1.5 s)"]
    assert took < 2.0 + 1.5 + 5.0  # the speech, the timeout, connect and close


@pytest.mark.slow
async def test_a_bot_that_never_stops_talking_is_cut_off():
    async def endless(ws: ServerConnection):
        async def talk():
            chunk = tone(0.02)
            start = time.monotonic()
            for n in range(10_000):
                await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
                await ws.send(chunk)

        await answer_after_speech(ws, talk)

    async with bot(endless) as uri:
        result, took = await run(uri, scenario(answer_secs_max=5))
    (turn,) = result.turns
    assert turn.notes == ["the answer was cut off after 2 s"]
    assert turn.answer_secs is not None and 1.9 <= turn.answer_secs <= 2.5
    assert result.passed, turn.failures
    assert took < 15


async def test_a_dropped_connection_is_exit_7_naming_the_close():
    async def drop(ws: ServerConnection):
        async def close():
            await ws.close(1011, "internal error")

        await answer_after_speech(ws, close)

    async with bot(drop) as uri:
        result, took = await run(uri, scenario())
    assert result.exit_code == 7, result.error
    assert result.error and "1011" in result.error
    assert took < 15


async def test_a_bot_that_answers_while_we_talk_gets_a_negative_response_time():
    async def eager(ws: ServerConnection):
        async def talk():
            await ws.send(tone(2.0))  # 0.5 s into the call: it plays at once, over our speech

        heard = 0
        async for message in ws:
            if isinstance(message, bytes):
                heard += len(message)
                if heard >= RATE and heard - len(message) < RATE:
                    await talk()

    async with bot(eager) as uri:
        result, _ = await run(uri, scenario(response_ms_min=0))
    (turn,) = result.turns
    assert turn.response_ms is not None and -1200 < turn.response_ms < -200, turn
    assert any(note.startswith("the bot began answering ") for note in turn.notes), turn.notes
    assert turn.failures == [f"response_ms {turn.response_ms:.0f} < 0"]
    assert turn.answer_secs is not None and 1.9 <= turn.answer_secs <= 2.1


@pytest.mark.slow
async def test_junk_between_the_answers_chunks_is_skipped_and_the_answer_measured():
    async def junky(ws: ServerConnection):
        async def talk():
            chunk = tone(0.02)
            start = time.monotonic()
            for n in range(50):  # 1 s of answer
                await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
                await ws.send(chunk)
                await ws.send("{not json" if n % 2 else b"\x01")  # bad text, odd bytes

        await answer_after_speech(ws, talk)

    async with bot(junky) as uri:
        result, _ = await run(uri, scenario(response_ms_max=3000))
    (turn,) = result.turns
    assert result.passed, (turn.failures, turn.notes, result.error)
    assert turn.answer_secs is not None and 0.9 <= turn.answer_secs <= 1.2
