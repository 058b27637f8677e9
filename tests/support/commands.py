"""Run the command line in a subprocess, and read the PNGs it writes."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "pipecat_wsclient"]


async def cli(*args: str, timeout: float = 60, interrupt_when=None):
    """Run the CLI; return (exit code, stdout, stderr).

    ``interrupt_when``: a coroutine function; SIGINT is sent once it returns.
    """
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    if interrupt_when is not None:
        await interrupt_when()
        proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])
