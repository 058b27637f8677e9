"""Subprocess helpers for tests."""

from __future__ import annotations

import contextlib
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
