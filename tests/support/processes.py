"""Subprocess helpers for tests."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

ECHO_SCRIPT = Path(__file__).parents[2] / "examples" / "pipecat_echo_server.py"


def _drain(stream, lines: queue.Queue[str]) -> None:
    """Copy lines of ``stream`` into ``lines``, then ``""`` at EOF; keeps the pipe drained."""
    for line in stream:
        lines.put(line)
    lines.put("")


@contextlib.contextmanager
def pipecat_echo_server(*args: str, timeout: float = 60.0) -> Iterator[str]:
    """Run ``pipecat_echo_server.py`` in a subprocess.

    Args:
        *args: Extra command-line arguments for the script.
        timeout: Seconds to wait for the ``READY`` line.

    Yields:
        The server's ``ws://127.0.0.1:PORT`` URI.

    Raises:
        RuntimeError: If the server exits or is not ready in time (the message
            includes the end of its log).
    """
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ECHO_SCRIPT), "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                line = ""
            if not line.startswith("READY "):
                log.seek(0)
                tail = log.read()[-4000:]
                raise RuntimeError(
                    f"pipecat echo server not ready (exit code {proc.poll()}, "
                    f"stdout {line!r}); log:\n{tail}"
                )
            yield line.split()[1]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
            if proc.stdout:
                proc.stdout.close()


PHONE_BOT_SCRIPT = Path(__file__).parent / "phone_bot.py"


class PhoneBot:
    """A running ``phone_bot.py``: its URI and what it has reported so far."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.uri = ""
        self._proc = proc
        self._reports: list[dict] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("READY ") and not self._ready.is_set():
                self.uri = line.split()[1]
                self._ready.set()
            elif line.startswith("REPORT "):
                with self._lock:
                    self._reports.append(json.loads(line[len("REPORT ") :]))
        self._ready.set()  # EOF: no READY is coming

    def reports(self, conn: int | None = None, event: str | None = None) -> list[dict]:
        """The parsed ``REPORT`` lines so far, optionally of one connection and event."""
        with self._lock:
            reports = list(self._reports)
        return [
            r
            for r in reports
            if (conn is None or r["conn"] == conn) and (event is None or r["event"] == event)
        ]

    def conn_of(self, stream_id: str) -> int | None:
        """The connection whose ``start`` report has this stream id."""
        for report in self.reports(event="start"):
            if report["call_data"].get("stream_id") == stream_id:
                return report["conn"]
        return None


@contextlib.contextmanager
def phone_bot(provider: str = "auto", timeout: float = 60.0) -> Iterator[PhoneBot]:
    """Run ``phone_bot.py`` (a Pipecat telephony bot) in a subprocess.

    Args:
        provider: ``auto`` (detect the carrier from its handshake) or ``vonage``.
        timeout: Seconds to wait for the ``READY`` line.

    Yields:
        The bot: ``.uri`` to call and ``.reports()`` for what it saw and did.

    Raises:
        RuntimeError: If the bot exits or is not ready in time (the message
            includes the end of its log).
    """
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, str(PHONE_BOT_SCRIPT), "--port", "0", "--provider", provider],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        bot = PhoneBot(proc)
        try:
            if not bot._ready.wait(timeout) or not bot.uri:
                log.seek(0)
                tail = log.read()[-4000:]
                raise RuntimeError(f"phone bot not ready (exit code {proc.poll()}); log:\n{tail}")
            yield bot
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            bot._reader.join(timeout=5)
            if proc.stdout:
                proc.stdout.close()
