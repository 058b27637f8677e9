"""Run ``plain_bot.py`` (a Twilio Media Streams bot with no Pipecat) in a subprocess."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from support.processes import PhoneBot

PLAIN_BOT_SCRIPT = Path(__file__).parent / "plain_bot.py"


class PlainBot(PhoneBot):
    """A running ``plain_bot.py``: ``.uri`` and ``.reports(conn=, event=)`` so far."""

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Wait until ``count`` reports of ``event`` came; return them.

        Raises:
            TimeoutError: If they did not come within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while len(reports := self.reports(event=event)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} {event!r} report(s) not seen; got {self.reports()}")
            time.sleep(0.02)
        return reports


def bot_flags(mode: str, flags: dict[str, object]) -> list[str]:
    """Command-line flags: ``stop_ms=50`` -> ``--stop-ms 50``; ``drop=True`` -> ``--drop``."""
    args = ["--mode", mode]
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False:
            args += [flag, str(value)]
    return args


@contextlib.contextmanager
def plain_bot(mode: str = "answer", timeout: float = 30.0, **flags: object) -> Iterator[PlainBot]:
    """Run the plain bot in a subprocess.

    Args:
        mode: ``--mode``: comma-separated modes (answer, greet, echo, barge,
            hangup, crash).
        timeout: Seconds to wait for the ``READY`` line.
        **flags: The bot's other flags by their option name (``latency=0.3``,
            ``silence_ms=300``, ``drop=True``).

    Yields:
        The bot: ``.uri`` to call and ``.reports()`` for what it heard and did.

    Raises:
        RuntimeError: If the bot exits or is not ready in time (the message
            includes the end of its log).
    """
    command = [sys.executable, str(PLAIN_BOT_SCRIPT), "--port", "0", *bot_flags(mode, flags)]
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
        )
        bot = PlainBot(proc)
        try:
            if not bot._ready.wait(timeout) or not bot.uri:
                log.seek(0)
                tail = log.read()[-4000:]
                raise RuntimeError(f"plain bot not ready (exit code {proc.poll()}); log:\n{tail}")
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
