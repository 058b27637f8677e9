"""A Twilio Media Streams bot with no Pipecat in it: a bot we did not write.

Issue 23. Our other test bots are built with Pipecat, as our tool is, so the
two could share a mistake (one serializer, one codec, one idea of a mark) and
agree on it. This one is written as Twilio's own samples are: a plain
``websockets`` server reading JSON text (``connected``, ``start``, ``media``,
``dtmf``, ``mark``, ``stop``) and sending ``media`` ``{event, streamSid,
media: {payload}}``, ``mark`` ``{event, streamSid, mark: {name}}`` and
``clear`` ``{event, streamSid}``. G.711 mu-law is numpy here (``audioop`` is
gone in Python 3.13); voice detection is an energy gate on 20 ms frames.

Run ``python tests/support/plain_bot.py --port 0 --mode answer,barge [--...]``
(flags: :class:`BotOptions`): it prints ``READY ws://127.0.0.1:PORT/ws``, then
``REPORT {json}`` lines. In-process: ``async with serve_plain_bot(options) as
bot:`` (``bot.uri``, ``bot.reports``). Modes (comma-separated):

- ``answer``: ``--latency`` s after each utterance ends (speech: louder than
  ``--threshold-dbfs`` for ``--vad-start-ms``; its end: ``--silence-ms`` of
  quiet), ``--answer-secs`` of tone ("words" if ``--pause-ms`` > 0), paced at
  real time in 20 ms messages, then a ``mark``;
- ``greet``: a ``--greet-secs`` greeting (and a mark) right after ``start``;
- ``echo``: every caller payload sent back ``--delay`` s after it arrived;
- ``barge`` (implies answer): caller speech over our audio stops it
  ``--stop-ms`` after the detection, then ``clear``;
- ``hangup`` (implies answer): once the first answer's mark is echoed (or
  after ``--mark-timeout`` s), close normally (1000), as Twilio bots hang up;
- ``crash``: raise in the handler after ``start`` (closes 1011); with
  ``--drop``, abort the TCP connection instead (1006 for the caller).

Each report has ``conn``, ``event``, ``media_ms`` (the media timeline: caller
media messages so far x 20 ms) and ``time`` (``time.monotonic()``, system wide
on Linux). Events: ``connected``, ``start``, ``speech-started`` (``start_ms``),
``utterance`` (``n``, ``start_ms``, ``end_ms``, ``end_time``: its last loud
frame's arrival), ``greeting-``/``answer-started`` (``n``; an answer's truth:
``response_ms = media_ms - end_ms``, ``response_time_ms = time - end_time``)
and ``-finished`` (``secs``), ``answer-stopped`` (``kind``, ``secs``,
``heard_time``: the onset's arrival, ``barge_ms``), ``clear-sent``,
``mark-sent``/``mark`` (``name``), ``echo-started`` (``delay_ms``), ``dtmf``,
``stop``, ``crash``, ``drop``, ``hangup`` (``mark_echoed``), ``closed``
(``code``, ``reason``, ``chunks_in``, ``chunks_out``), ``error``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError

RATE = 8000
FRAME_SECS = 0.020
FRAME_BYTES = 320  # 20 ms of 16-bit PCM at 8 kHz: 160 mu-law bytes on the wire
MODES = {"answer", "greet", "echo", "barge", "hangup", "crash"}

_BIAS = 0x84  # G.711 mu-law as in Sun's reference code
_CLIP = 32635


def encode_ulaw(pcm: bytes) -> bytes:
    """16-bit little-endian PCM to G.711 mu-law (on 14 bits: bit-exact with audioop's)."""
    x = (np.frombuffer(pcm, dtype="<i2").astype(np.int32) >> 2) << 2
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS  # 132 .. 32767
    exponent = np.frexp(magnitude)[1] - 8  # bit length 8 .. 15 -> 0 .. 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


_U = ~np.arange(256) & 0xFF  # each mu-law byte, its bits as sent (inverted)
_MAGNITUDE = ((((_U & 0x0F) << 3) + _BIAS) << ((_U >> 4) & 7)) - _BIAS
_ULAW_TO_PCM = np.where(_U & 0x80, -_MAGNITUDE, _MAGNITUDE).astype("<i2")


def decode_ulaw(data: bytes) -> bytes:
    """G.711 mu-law to 16-bit little-endian PCM."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].tobytes()


def level_dbfs(pcm: bytes) -> float:
    """RMS of 16-bit PCM in dB relative to full scale (-inf for silence)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = math.sqrt(float(np.mean(x * x))) if len(x) else 0.0
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def tone(secs: float, freq: float, pause_ms: int = 0, word_ms: int = 300) -> bytes:
    """16-bit PCM at 8 kHz: a tone at -15 dBFS RMS or, with ``pause_ms``, "words" of it.

    Words are ``word_ms`` long, ``pause_ms`` apart, faded in and out over 5 ms.
    """
    t = np.arange(round(secs * RATE)) / RATE
    x = 0.25 * np.sin(2 * math.pi * freq * t)
    if pause_ms > 0:
        phase = t % ((word_ms + pause_ms) / 1000)
        x *= np.clip(np.minimum(phase, word_ms / 1000 - phase) / 0.005, 0, 1)
    return (x * 32767).astype("<i2").tobytes()


@dataclass
class EnergyVad:
    """Voice activity on 20 ms frames, no I/O. Frame ``i`` is ``[20 i, 20 i + 20)`` ms.

    Speech begins after ``start_ms`` of frames louder than ``threshold_dbfs``
    (``onset``: the first); it ends after ``silence_ms`` quieter (``last_voiced``).
    """

    start_ms: int = 100
    silence_ms: int = 600
    threshold_dbfs: float = -40.0
    speaking: bool = False
    onset: int = 0
    last_voiced: int = -1
    _run: int = 0

    def feed(self, index: int, pcm: bytes) -> str | None:
        """Judge frame ``index``: ``"started"``, ``"ended"`` or None (no change)."""
        voiced = level_dbfs(pcm) > self.threshold_dbfs
        if voiced:
            self._run = self._run + 1 if index == self.last_voiced + 1 else 1
            self.last_voiced = index
        if not self.speaking and voiced and self._run * 20 >= self.start_ms:
            self.speaking, self.onset = True, index - self._run + 1
            return "started"
        if self.speaking and (index - self.last_voiced) * 20 >= self.silence_ms:
            self.speaking = False
            return "ended"
        return None


@dataclass
class BotOptions:
    """What the bot does; the script's flags have the same names (``--answer-secs``)."""

    modes: frozenset[str] = frozenset({"answer"})
    drop: bool = False
    latency: float = 0.5
    answer_secs: float = 1.5
    pause_ms: int = 0
    greet_secs: float = 1.0
    delay: float = 0.0
    stop_ms: int = 100
    vad_start_ms: int = 100
    silence_ms: int = 600
    threshold_dbfs: float = -40.0
    mark_timeout: float = 5.0


class Call:
    """One Media Stream: reads the caller's messages, speaks, reports."""

    def __init__(self, ws: ServerConnection, options: BotOptions, conn: int, report: Callable):
        self.ws, self.options, self.conn, self._report = ws, options, conn, report
        implied = {"answer"} if options.modes & {"barge", "hangup"} else set()
        self.modes = options.modes | implied
        self.stream_sid = ""
        self.chunks_in = self.chunks_out = 0
        self.vad = EnergyVad(options.vad_start_ms, options.silence_ms, options.threshold_dbfs)
        self.arrivals: dict[int, float] = {}  # frame index -> arrival time (voiced frames)
        self.utterances = self.answers = 0
        self.speaking: str | None = None  # "answer-2" while it is sent
        self.turn_sent = 0  # media messages of it sent so far
        self.hush = asyncio.Event()  # set: stop the audio going out now
        self.turn = asyncio.Lock()  # one greeting or answer at a time
        self.marks: dict[str, asyncio.Event] = {}
        self.echoes: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.tasks: set[asyncio.Task] = set()

    def report(self, event: str, **fields: Any) -> None:
        self._report({"conn": self.conn, "event": event, "media_ms": self.chunks_in * 20,
                      "time": time.monotonic(), **fields})  # fmt: skip

    async def send(self, event: str, **fields: Any) -> None:
        """The one place that sends: a Twilio message for our stream."""
        await self.ws.send(json.dumps({"event": event, "streamSid": self.stream_sid, **fields}))

    def spawn(self, coro) -> None:
        """Run ``coro`` as a task of this call (cancelled at its end; a failure is reported)."""
        self.tasks.add(task := asyncio.get_running_loop().create_task(coro))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.report("error", error=repr(task.exception()))

    async def run(self) -> None:
        """Handle the stream until the caller (or we) close the socket."""
        self.report("connected", path=self.ws.request.path if self.ws.request else "")
        try:
            with contextlib.suppress(ConnectionClosedError):  # 1006 when we --drop
                async for text in self.ws:
                    message = json.loads(text)
                    if handle := getattr(self, f"on_{message.get('event')}", None):
                        handle(message)
        finally:
            for task in list(self.tasks):
                task.cancel()
        self.report("closed", code=self.ws.close_code, reason=self.ws.close_reason,
                    chunks_in=self.chunks_in, chunks_out=self.chunks_out)  # fmt: skip

    def on_start(self, message: dict) -> None:
        start = message["start"]
        self.stream_sid = start["streamSid"]
        self.report("start", stream_sid=self.stream_sid, call_sid=start.get("callSid"),
                    media_format=start.get("mediaFormat"),
                    custom_parameters=start.get("customParameters"))  # fmt: skip
        if "crash" in self.modes and self.options.drop:
            self.report("drop")
            self.ws.transport.abort()
            return
        if "crash" in self.modes:
            self.report("crash")
            raise RuntimeError("plain bot: crashing on purpose after start")
        if "greet" in self.modes:
            self.spawn(self.speak_turn("greeting", 0, tone(self.options.greet_secs, 660)))
        if "echo" in self.modes:
            self.spawn(self.echo())

    def on_media(self, message: dict) -> None:
        media = message["media"]
        if media.get("track", "inbound") != "inbound":
            return
        index, now = self.chunks_in, time.monotonic()
        self.chunks_in += 1
        if "echo" in self.modes:
            self.echoes.put_nowait((now, media["payload"]))
        decision = self.vad.feed(index, decode_ulaw(base64.b64decode(media["payload"])))
        if self.vad.last_voiced == index:
            self.arrivals[index] = now
        if decision == "started":
            self.report("speech-started", start_ms=self.vad.onset * 20)
            if "barge" in self.modes and self.speaking:
                self.spawn(self.barge(self.arrivals[self.vad.onset]))
        elif decision == "ended":
            self.utterances += 1
            end_time = self.arrivals[self.vad.last_voiced]
            self.report("utterance", n=self.utterances, start_ms=self.vad.onset * 20,
                        end_ms=(self.vad.last_voiced + 1) * 20, end_time=end_time)  # fmt: skip
            self.arrivals.clear()
            if "answer" in self.modes:
                self.spawn(self.answer((self.vad.last_voiced + 1) * 20, end_time))

    def on_mark(self, message: dict) -> None:
        name = message.get("mark", {}).get("name", "")
        self.report("mark", name=name)
        self.marks.setdefault(name, asyncio.Event()).set()

    def on_dtmf(self, message: dict) -> None:
        self.report("dtmf", digit=message.get("dtmf", {}).get("digit"))

    def on_stop(self, message: dict) -> None:
        self.report("stop")

    async def answer(self, end_ms: int, end_time: float) -> None:
        """Answer an utterance ``--latency`` s after its end was decided."""
        await asyncio.sleep(self.options.latency)
        n = self.answers = self.answers + 1
        pcm = tone(self.options.answer_secs, 440, self.options.pause_ms)
        finished = await self.speak_turn("answer", n, pcm, end_ms=end_ms, end_time=end_time)
        if "hangup" in self.modes and finished:
            mark = self.marks.setdefault(f"answer-{n}", asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mark.wait(), self.options.mark_timeout)
            self.report("hangup", mark_echoed=mark.is_set())
            await self.ws.close(1000)

    async def speak_turn(self, kind: str, n: int, pcm: bytes, **truth: float) -> bool:
        """Send ``pcm`` paced at real time, then a mark; False if barged in on."""
        async with self.turn:
            self.speaking, self.turn_sent = f"{kind}-{n}", 0
            self.hush.clear()
            fields: dict[str, Any] = {"n": n}
            if truth:
                fields["response_ms"] = self.chunks_in * 20 - truth["end_ms"]
                fields["response_time_ms"] = (time.monotonic() - truth["end_time"]) * 1000
            self.report(f"{kind}-started", **fields)
            loop = asyncio.get_running_loop()
            begin = loop.time()
            for offset in range(0, len(pcm), FRAME_BYTES):
                with contextlib.suppress(TimeoutError):  # pace; wake at once on a barge-in
                    wait = begin + self.turn_sent * FRAME_SECS - loop.time()
                    await asyncio.wait_for(self.hush.wait(), max(wait, 0))
                if self.hush.is_set():
                    self.speaking = None
                    return False
                payload = base64.b64encode(encode_ulaw(pcm[offset : offset + FRAME_BYTES])).decode()
                await self.send("media", media={"payload": payload})
                self.turn_sent += 1
                self.chunks_out += 1
            self.report(f"{kind}-finished", n=n, secs=self.turn_sent * FRAME_SECS)
            await self.send("mark", mark={"name": self.speaking})
            self.report("mark-sent", name=self.speaking)
            self.speaking = None
            return True

    async def barge(self, heard_time: float) -> None:
        """The caller talks over us: stop ``--stop-ms`` later, then clear."""
        await asyncio.sleep(self.options.stop_ms / 1000)
        speaking = self.speaking
        if speaking is None:
            return
        self.hush.set()
        kind, n = speaking.split("-")
        barge_ms = (time.monotonic() - heard_time) * 1000
        secs = self.turn_sent * FRAME_SECS
        self.report("answer-stopped", n=int(n), kind=kind, secs=secs, heard_time=heard_time,
                    barge_ms=barge_ms)  # fmt: skip
        await self.send("clear")
        self.report("clear-sent")

    async def echo(self) -> None:
        """Send each caller payload back ``--delay`` s after it arrived."""
        while True:
            arrived, payload = await self.echoes.get()
            await asyncio.sleep(max(0.0, arrived + self.options.delay - time.monotonic()))
            await self.send("media", media={"payload": payload})
            self.chunks_out += 1
            if self.chunks_out == 1:
                self.report("echo-started", delay_ms=(time.monotonic() - arrived) * 1000)


@dataclass
class RunningBot:
    """A bot serving in this process: ``uri`` to call, ``reports`` it made so far."""

    uri: str = ""
    reports: list[dict] = field(default_factory=list)

    def events(self, event: str) -> list[dict]:
        """The reports of one event, in order."""
        return [r for r in self.reports if r["event"] == event]


@contextlib.asynccontextmanager
async def serve_plain_bot(
    options: BotOptions | None = None, *, port: int = 0, echo: Callable | None = None
) -> AsyncIterator[RunningBot]:
    """Serve the bot (``options``, default answer) on 127.0.0.1 while the block runs.

    ``port`` 0 picks a free one; ``echo``, if given, is called with each report
    too (the script prints them). Yields the :class:`RunningBot`.
    """
    options, bot, counter = options or BotOptions(), RunningBot(), itertools.count(1)

    def report(fields: dict) -> None:
        bot.reports.append(fields)
        if echo is not None:
            echo(fields)

    async def handler(ws: ServerConnection) -> None:
        await Call(ws, options, next(counter), report).run()

    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        bot.uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        yield bot


def parse_options(argv: list[str]) -> tuple[BotOptions, int]:
    """The script's flags: ``--port`` and one per :class:`BotOptions` field."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="answer", help=f"comma-separated: {sorted(MODES)}")
    parser.add_argument("--drop", action="store_true", help="crash: abort TCP (1006)")
    for f in fields(BotOptions):
        if f.name not in ("modes", "drop"):
            parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                                default=f.default)  # fmt: skip
    args = parser.parse_args(argv)
    modes = set(args.mode.split(","))
    if modes - MODES:
        parser.error(f"unknown mode(s) {sorted(modes - MODES)}; known: {sorted(MODES)}")
    values = {f.name: getattr(args, f.name) for f in fields(BotOptions) if f.name != "modes"}
    return BotOptions(modes=frozenset(modes), **values), args.port


async def main(argv: list[str]) -> None:
    """Serve until killed: ``READY <uri>``, then ``REPORT {json}`` lines, on stdout."""
    options, port = parse_options(argv)
    echo = lambda fields: print("REPORT " + json.dumps(fields), flush=True)  # noqa: E731
    async with serve_plain_bot(options, port=port, echo=echo) as bot:
        print(f"READY {bot.uri}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1:]))
