"""A hostile page against a real ``pipecat-wsclient phone`` process (issue 25).

The page here is a program with the run's token (the worst case: the user's
own page gone wrong, or one that got the token): it floods audio far faster
than real time, floods junk text, sends an oversized message, never reads
what the phone sends, or leaves mid-flood. The bot is a local WebSocket
server speaking ``raw`` (binary PCM at 8 kHz) that counts what it receives,
when, and echoes it back (so the phone has audio to push at a page that
does not read). What must hold, whatever the page does:

- the phone's memory stays bounded (its RSS, read from ``/proc``);
- the bot gets no more than real time plus the bound on what waits
  (:data:`~pipecat_wsclient.phone.limits.PAGE_MIC_SECS`), during the call and
  after the page leaves (no backlog streamed);
- SIGINT or SIGTERM ends the process within 2 s (asserted < 5 s: a noisy
  box), leaving no process behind, and the bot is hung up on;
- junk text or an oversized message closes the page's socket (1008, 1009).

Figures measured are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pipecat_wsclient.phone.limits import PAGE_MIC_SECS, PAGE_TEXT_BURST

pytestmark = pytest.mark.slow  # a phone process and bots in subprocesses

RATE = 8000
BYTES_PER_SEC = 2 * RATE
FLOOD_SECS = 300
"""Audio the page floods..."""
FLOOD_WITHIN = 2.0
"""...in this long (150 times real time)."""
RSS_LIMIT_MB = 100
"""How much the phone's memory may grow under a flood."""
EXIT_SECS = 5.0
"""SIGINT/SIGTERM to exit (the promise is 2 s; the bound is generous for a noisy box)."""


class CountingBot:
    """A ``raw`` bot: counts the PCM it gets (bytes, first and last arrival), echoes it."""

    def __init__(self) -> None:
        self.received = 0
        self.connected_at: float | None = None
        self.last_at: float | None = None
        self.closed_at: float | None = None
        self.calls = 0

    async def handle(self, ws: ServerConnection) -> None:
        self.calls += 1
        self.connected_at = time.monotonic()
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self.received += len(message)
                    self.last_at = time.monotonic()
                    await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()

    @property
    def received_secs(self) -> float:
        return self.received / BYTES_PER_SEC


class RssWatch:
    """The peak RSS of a process, sampled ten times a second in a thread."""

    def __init__(self, pid: int):
        self._process = psutil.Process(pid)
        self.start_mb = self._mb()
        self.peak_mb = self.start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak_mb = max(self.peak_mb, self._mb())
            except psutil.Error:
                return

    def stop(self) -> float:
        """Stop sampling; return the growth (peak - start) in MiB."""
        self._stop.set()
        self._thread.join(5)
        return self.peak_mb - self.start_mb


@contextmanager
def counting_bot() -> Iterator[tuple[CountingBot, str]]:
    """A :class:`CountingBot` on its own event loop in a thread; yields it and its URI."""
    bot = CountingBot()
    loop = asyncio.new_event_loop()

    async def start():
        return await serve(bot.handle, "127.0.0.1", 0)

    server = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield bot, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextmanager
def phone_process(bot_uri: str, save: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``pipecat-wsclient phone`` (raw, 8 kHz) in a process; yields it and its /call URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipecat_wsclient",
            "phone",
            bot_uri,
            "--no-browser",
            "--protocol",
            "raw",
            "--sample-rate",
            str(RATE),
            "--save",
            str(save),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Phone page: "), (line, proc.stderr.read())
        base, _, query = line.split()[-1].partition("?")
        yield proc, f"{base.replace('http://', 'ws://')}call?{query}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def stop_and_time(proc: subprocess.Popen, sig: signal.Signals) -> tuple[float, list[int]]:
    """Send ``sig``; return how long the process took to exit and its children's pids."""
    children = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
    sent_at = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=30)
    return time.monotonic() - sent_at, children


async def flood_audio(ws: ClientConnection, secs: float, within: float, chunk_secs=1.0) -> float:
    """Send ``secs`` of PCM spread over ``within`` seconds (as fast, if the phone reads slower)."""
    chunk = b"\x10\x00" * int(RATE * chunk_secs)
    count = int(secs / chunk_secs)
    start = time.monotonic()
    try:
        for n in range(count):
            await ws.send(chunk)
            await asyncio.sleep(max(0.0, start + within * (n + 1) / count - time.monotonic()))
    except ConnectionClosed:
        pass  # the phone went away (stopped)
    return time.monotonic() - start


def until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def await_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_page_flooding_audio_cannot_grow_the_phone_or_the_bots_backlog_or_hold_the_exit(
    tmp_path, sig
) -> None:
    """300 s of audio in 2 s from a page that never reads; then a signal, mid-call.

    Invariants: RSS growth under the limit; the bot got at most real time
    plus what may wait; the signal ends the process in seconds (no backlog to
    stream, no queue to drain), leaving no child behind, the bot hung up on.
    """
    with counting_bot() as (bot, bot_uri):
        with phone_process(bot_uri, tmp_path) as (proc, call_url):

            async def page() -> tuple[float, float, float]:
                nonlocal rss
                async with connect(call_url, max_queue=1) as ws:
                    ws.transport.pause_reading()  # never reads
                    assert await await_until(lambda: bot.connected_at is not None, 15)
                    await asyncio.sleep(1.0)  # the call set up, matplotlib warmed up
                    rss = RssWatch(proc.pid)
                    took = await flood_audio(ws, FLOOD_SECS, FLOOD_WITHIN)
                    await asyncio.sleep(2.0)  # the call goes on; the phone holds what it holds
                    elapsed, got = time.monotonic() - (bot.connected_at or 0), bot.received_secs
                    # The signal comes mid-call, the page still flooding and not reading.
                    flooding = asyncio.create_task(flood_audio(ws, FLOOD_SECS, FLOOD_WITHIN))
                    await asyncio.sleep(0.5)
                    exit_secs[:] = await asyncio.to_thread(stop_and_time, proc, sig)
                    flooding.cancel()
                    ws.transport.abort()
                    return took, elapsed, got

            exit_secs: list = []
            rss: RssWatch | None = None
            took, elapsed, got = asyncio.run(page())
            assert rss is not None
            exit_secs, children = exit_secs
            growth = rss.stop()
        assert until(lambda: bot.closed_at is not None, 5), "the bot was never hung up on"
    print(
        f"\n{sig.name}: flooded {FLOOD_SECS} s of audio in {took:.2f} s; the bot got "
        f"{got:.2f} s in {elapsed:.2f} s of call; RSS +{growth:.1f} MiB "
        f"(from {rss.start_mb:.0f}); exit {exit_secs:.2f} s after the signal"
    )
    assert proc.returncode == 0
    assert exit_secs < EXIT_SECS
    assert growth < RSS_LIMIT_MB
    assert 0.5 < got <= elapsed + PAGE_MIC_SECS, "the bot got more than real time + the bound"
    assert not [pid for pid in children if psutil.pid_exists(pid)], "a process was left behind"


def test_a_page_that_leaves_mid_flood_ends_the_call_without_a_backlog(tmp_path) -> None:
    """The page floods then closes: the bot's call ends at once; no backlog is streamed.

    (Before issue 25, an hour queued went on streaming for ten minutes.)
    """
    with counting_bot() as (bot, bot_uri):
        with phone_process(bot_uri, tmp_path) as (proc, call_url):

            async def page() -> float:
                async with connect(call_url, max_queue=1) as ws:
                    ws.transport.pause_reading()
                    assert await await_until(lambda: bot.connected_at is not None, 15)
                    await flood_audio(ws, FLOOD_SECS, FLOOD_WITHIN)
                    ws.transport.abort()  # gone, without a goodbye
                    return time.monotonic()

            left_at = asyncio.run(page())
            assert until(lambda: bot.closed_at is not None, 10), "the call to the bot went on"
            ended_after = (bot.closed_at or 0) - left_at
            call_secs = (bot.closed_at or 0) - (bot.connected_at or 0)
            got = bot.received_secs
            assert proc.stdout.readline().startswith("call 1: ")  # it reported the call
            exit_secs, _ = stop_and_time(proc, signal.SIGINT)
    print(
        f"\nthe page left; the bot's call ended {ended_after:.2f} s later; it got {got:.2f} s "
        f"of audio in a {call_secs:.2f} s call; exit {exit_secs:.2f} s after SIGINT"
    )
    assert ended_after < 3.0
    assert got <= call_secs + PAGE_MIC_SECS
    assert exit_secs < EXIT_SECS and proc.returncode == 0


@pytest.mark.parametrize(
    ("attack", "reads", "codes"),
    [("junk", False, (1006, 1008)), ("junk", True, (1008,)), ("oversized", True, (1009,))],
    ids=["junk-never-reading", "junk-reading", "oversized"],
)
def test_junk_or_oversized_text_closes_the_page_and_memory_stays_bounded(
    tmp_path, attack, reads, codes
) -> None:
    """Junk text as fast as it goes: the page is closed (1008), the phone's memory bounded.

    A page that never reads cannot even take the close frame: its connection
    is dropped (1006) when it does not answer the close. An oversized text
    message is closed at once (1009). The bot's call ends with the page's.
    """
    with counting_bot() as (bot, bot_uri):
        with phone_process(bot_uri, tmp_path) as (proc, call_url):

            async def page() -> tuple[int, float, int | None]:
                nonlocal rss
                sent = 0
                async with connect(call_url, max_queue=None if reads else 1) as ws:
                    if not reads:
                        ws.transport.pause_reading()
                    assert await await_until(lambda: bot.connected_at is not None, 15)
                    await asyncio.sleep(1.0)  # the call set up, matplotlib warmed up
                    rss = RssWatch(proc.pid)
                    start = time.monotonic()
                    try:
                        if attack == "oversized":
                            await ws.send("x" * 10_000)
                            sent = 1
                        while time.monotonic() < start + 10:
                            await ws.send(json.dumps({"type": "junk", "n": sent, "pad": "j" * 600}))
                            sent += 1
                            if sent % 50 == 0:
                                await asyncio.sleep(0)
                    except ConnectionClosed:
                        pass
                    closed_after = time.monotonic() - start
                    ws.transport.resume_reading()
                    await asyncio.wait_for(ws.wait_closed(), 10)
                    return sent, closed_after, ws.close_code

            rss: RssWatch | None = None
            sent, closed_after, close_code = asyncio.run(page())
            assert rss is not None
            growth = rss.stop()
            assert until(lambda: bot.closed_at is not None, 10), "the bot's call went on"
            exit_secs, _ = stop_and_time(proc, signal.SIGINT)
    print(
        f"\n{attack}: {sent} messages sent; the page's socket closed ({close_code}) "
        f"{closed_after:.2f} s after the first; RSS +{growth:.1f} MiB; "
        f"exit {exit_secs:.2f} s after SIGINT"
    )
    assert close_code in codes
    assert closed_after < 8, "the phone took the flood for too long"
    assert growth < RSS_LIMIT_MB
    assert exit_secs < EXIT_SECS
    if attack == "junk":
        assert sent > PAGE_TEXT_BURST  # it was a flood, and it was cut short
