"""Issue 25, item 3: the two ways a stop could not take effect, each attacked on its own.

``test_stop_bound.py`` runs the commands; here a small script takes the
command line's signal handling (:mod:`pipecat_wsclient.caller.signals`) and
does the one thing that kept a command running after SIGINT or SIGTERM:

- a thread still working (``asyncio.to_thread``: a Whisper transcription, a
  model download), which ``asyncio.run`` joins before it returns and the
  interpreter joins again at exit: not waited for after a signal;
- a task that never yields (as Pipecat's output did, cutting audio into
  0-byte chunks at a rate of 1 Hz): the loop never sees the stop, so a
  watchdog exits 3 s after the signal, with the signal's code and one line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BOUND_SECS = 5.0


def run_script(tmp_path: Path, body: str, sig: signal.Signals) -> tuple[float, int, str]:
    """Run ``body`` (after the command line's signal set-up) until it prints ``ready``, signal
    it; return (seconds from the signal to the exit, exit code, stderr)."""
    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from pipecat_wsclient.caller import signals\n"
        "signals.guard_process(); signals.bound_stops()\n" + body
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.communicate()
    proc.send_signal(sig)
    signalled = time.monotonic()
    _, err = proc.communicate(timeout=60)
    return time.monotonic() - signalled, proc.returncode, err


def test_a_thread_still_working_is_not_waited_for(tmp_path: Path) -> None:
    """A 30 s job in a thread when SIGINT comes: the exit is at once, with 130."""
    took, code, err = run_script(
        tmp_path,
        "async def main():\n"
        "    stop = asyncio.Event()\n"
        "    with signals.stop_on_signals(stop):\n"
        "        job = asyncio.ensure_future(asyncio.to_thread(time.sleep, 30))\n"
        "        print('ready', flush=True)\n"
        "        await asyncio.wait([job, asyncio.ensure_future(stop.wait())],\n"
        "                           return_when=asyncio.FIRST_COMPLETED)\n"
        "        job.cancel()\n"
        "signals.run_stoppable(main())\n"
        "signals.exit_after_signal(signals.stopped_exit_code())\n",
        signal.SIGINT,
    )
    assert took < 2.0, took
    assert code == 130
    assert err == ""


@pytest.mark.slow  # waits out the 3 s forced exit
def test_a_stop_that_cannot_take_effect_is_cut_short(tmp_path: Path) -> None:
    """The safety net: a loop that never yields (as a 0-byte chunk size made Pipecat's) still
    exits 3 s after the signal, with the signal's code and one line saying so."""
    took, code, err = run_script(
        tmp_path,
        "async def main():\n"
        "    stop = asyncio.Event()\n"
        "    with signals.stop_on_signals(stop):\n"
        "        print('ready', flush=True)\n"
        "        while True:\n"
        "            pass\n"
        "signals.run_stoppable(main())\n",
        signal.SIGTERM,
    )
    assert 2.5 <= took < BOUND_SECS, took
    assert code == 143
    assert err.strip() == "error: still running 3 s after SIGTERM: exiting now"
