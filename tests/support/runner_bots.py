"""Run ``runner_bot.py`` (Pipecat's telephony examples under Pipecat's runner) in a subprocess.

The runner prints its banner and "Bot ready!" before uvicorn binds the port,
and nothing machine-readable, so :func:`runner_bot` picks a free port, passes
it with ``-t TRANSPORT --host 127.0.0.1 --port PORT`` (``twilio`` by default;
``telnyx``, ``plivo``, ``exotel``) and polls until the port accepts a
connection. The bot runs in a scratch folder (the example saves
``recording_*.wav`` in its working directory) with none of the carriers'
credentials in its environment (``TWILIO_*``, ``TELNYX_*``, ``PLIVO_*``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNER_BOT_SCRIPT = Path(__file__).parent / "runner_bot.py"
CONNECTION = "RUNNER_BOT connection "
CALL_DATA = "RUNNER_BOT call_data "
CREDENTIALS = ("TWILIO_", "TELNYX_", "PLIVO_")
"""The prefixes of the carriers' variables kept out of the bot's environment."""


def runner_available() -> None:
    """Skip the test when Pipecat's runner cannot start here (it needs python-multipart)."""
    pytest.importorskip("python_multipart", reason="Pipecat's runner needs python-multipart")
    pytest.importorskip("pipecat.runner.run")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunnerBot:
    """A running runner bot: ``.uri``, ``.folder`` (its working directory), its output."""

    def __init__(self, proc: subprocess.Popen[str], port: int, folder: Path, log):
        self.uri = f"ws://127.0.0.1:{port}/ws"
        self.port = port
        self.folder = folder
        self._proc = proc
        self._log = log
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def stdout(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    @property
    def connections(self) -> int:
        """How many times the runner called ``bot()`` (one line each on its stdout)."""
        return sum(line.startswith(CONNECTION) for line in self.stdout())

    def call_data(self) -> list[dict]:
        """Per connection whose transport was made: ``transport`` and the ids the bot read.

        The keys of Pipecat's ``CallData`` (``stream_id``, ``call_id``, ``from``,
        ``to``, ``body``, and the provider's extras such as Telnyx's
        ``outbound_encoding``).
        """
        return [
            json.loads(line.removeprefix(CALL_DATA))
            for line in self.stdout()
            if line.startswith(CALL_DATA)
        ]

    def log(self) -> str:
        """Its stderr so far (loguru's and uvicorn's logs)."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def wait_connections(self, count: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.connections < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.connections


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def runner_bot(
    crash: bool = False,
    timeout: float = 45.0,
    transport: str = "twilio",
    example_transport: bool = False,
) -> Iterator[RunnerBot]:
    """Run the runner bot on 127.0.0.1 and a free port until the block ends.

    Args:
        crash: Set ``RUNNER_BOT_CRASH=1``: the example's own ``create_transport``
            runs, and raises on every connection (no Twilio, Telnyx or Plivo
            credentials).
        timeout: Seconds to wait for the port to accept connections.
        transport: The runner's ``-t``: ``twilio``, ``telnyx``, ``plivo`` or ``exotel``.
        example_transport: The same switch as ``crash``, named for Exotel, whose
            example's own ``create_transport`` needs no credentials and works.

    Yields:
        The bot.

    Raises:
        RuntimeError: If the bot exits or does not listen in time (with the
            end of its log).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIALS)}
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("RUNNER_BOT_CRASH", None)
    if crash or example_transport:
        env["RUNNER_BOT_CRASH"] = "1"
    command = [
        sys.executable,
        str(RUNNER_BOT_SCRIPT),
        *("-t", transport, "--host", "127.0.0.1", "--port", str(port)),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="runner-bot-") as folder,
        tempfile.NamedTemporaryFile(mode="w+", suffix=".log") as log,
    ):
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        bot = RunnerBot(proc, port, Path(folder), log)
        try:
            deadline = time.monotonic() + timeout
            while not _listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"runner bot not listening on {port} (exit code {proc.poll()}); "
                        f"log:\n{bot.log()[-4000:]}"
                    )
                time.sleep(0.1)
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
