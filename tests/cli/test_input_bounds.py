"""Issue 25, item 4: every rate, duration and size has a sane range, wherever it comes from.

Found by the attack run: ``call --sample-rate 1`` (up to 99) made Pipecat's
output cut audio into 0-byte chunks forever, on the event loop (a core at
100 %, 80 MB/s, SIGINT and SIGTERM ignored); a scenario's ``sample_rate:
1e11`` grew to 23.9 GB; a WAV whose header claims 4 GB of data or a chunk
bigger than the file was read as if it were fine, or was a traceback.

The promise, attacked here for the command line's options, the scenario
file's keys and the WAV headers of ``--play``, ``--clip`` and ``play:``:
one line on stderr (``error: ...``) naming the option, key or file and the
cause, exit 2, and no connection made (a TCP listener counts them).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecat_wsclient.audio.wav import write_wav
from pipecat_wsclient.caller.limits import RATE_MAX, RATE_MIN

pytestmark = pytest.mark.slow  # one command-line process per case (about 40 s)

CLI = [sys.executable, "-m", "pipecat_wsclient"]


class Counter:
    """A TCP listener on 127.0.0.1 that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.count = 0
        self.uri = f"ws://127.0.0.1:{self.sock.getsockname()[1]}/ws"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def counter() -> Iterator[Counter]:
    listener = Counter()
    yield listener
    listener.close()


def riff(fmt: bytes, chunks: list[tuple[bytes, int, bytes]]) -> bytes:
    """A RIFF/WAVE file: ``fmt `` then chunks of (id, claimed size, actual bytes)."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    for name, claimed, data in chunks:
        body += name + struct.pack("<I", claimed) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM16_MONO_16K = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
SECOND = b"\x00\x01" * 16000


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wavs")
    (folder / "claims-4gb.wav").write_bytes(riff(PCM16_MONO_16K, [(b"data", 0xFFFFFFF0, SECOND)]))
    (folder / "huge-chunk.wav").write_bytes(
        riff(PCM16_MONO_16K, [(b"LIST", 0xFFFFFF00, b"x" * 10), (b"data", 32000, SECOND)])
    )
    (folder / "rate-1.wav").write_bytes(
        riff(struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16), [(b"data", 32000, SECOND)])
    )
    (folder / "channels-1000.wav").write_bytes(
        riff(
            struct.pack("<HHIIHH", 1, 1000, 16000, 32_000_000, 2000, 16),
            [(b"data", 2000, b"\x00" * 2000)],
        )
    )
    (folder / "not-audio.wav").write_bytes(b"hello, world\n" * 10)
    write_wav(folder / "ok.wav", SECOND, 16000)
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def assert_usage_error(out: subprocess.CompletedProcess[str], names: str, counter: Counter):
    before = counter.count
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert names in lines[0], lines[0]
    assert "Traceback" not in out.stderr
    assert counter.count == before == 0, "a connection was made"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--sample-rate", "1"], "--sample-rate"),
        (["--sample-rate", str(RATE_MIN - 1)], "--sample-rate"),
        (["--sample-rate", str(RATE_MAX + 1)], "--sample-rate"),
        (["--duration", "0"], "--duration"),
        (["--duration", "1e9"], "--duration"),
        (["--duration", "nan"], "--duration"),
        (["--listen", "-1"], "--listen"),
        (["--listen", "nan"], "--listen"),
        (["--open-timeout", "1e12"], "--open-timeout"),
        (["--stop-silence-ms", "1e15"], "--stop-silence-ms"),
    ],
)
def test_call_options_out_of_range(counter: Counter, args: list[str], names: str) -> None:
    assert_usage_error(run_cli("call", counter.uri, *args), names, counter)


@pytest.mark.parametrize(
    ("wav", "names"),
    [
        ("claims-4gb.wav", "'data' chunk claims 4294967280 bytes"),
        ("huge-chunk.wav", "'LIST' chunk claims 4294967040 bytes"),
        ("rate-1.wav", "sample rate 1 Hz"),
        ("channels-1000.wav", "1000 channels"),
        ("not-audio.wav", "not an audio file"),
    ],
)
def test_lying_wav_headers_for_call(counter: Counter, wavs: Path, wav: str, names: str) -> None:
    out = run_cli("call", counter.uri, "--play", str(wavs / wav))
    assert_usage_error(out, names, counter)
    assert wav in out.stderr


@pytest.mark.parametrize("command", ["load", "test"])
def test_lying_wav_headers_for_load_and_test(
    counter: Counter, wavs: Path, tmp_path: Path, command: str
) -> None:
    path = wavs / "claims-4gb.wav"
    if command == "load":
        out = run_cli("load", counter.uri, "--clip", str(path), "--calls", "1")
    else:  # read mid-call before: now checked with the file, before any call
        scenario = tmp_path / "s.yaml"
        scenario.write_text(f"uri: {counter.uri}\nturns:\n  - say: hello\n  - play: {path}\n")
        out = run_cli("test", str(scenario), "--allow-outside-files", "--no-transcripts")
    assert_usage_error(out, "'data' chunk claims 4294967280 bytes", counter)
    assert "claims-4gb.wav" in out.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--sample-rate", "1"], "--sample-rate"),
        (["--calls", "100000000"], "--calls"),
        (["--concurrency", "0"], "--concurrency"),
        (["--ramp", "1e9"], "--ramp"),
        (["--turns", "100000"], "--turns"),
        (["--think", "nan"], "--think"),
        (["--duration", "1e9"], "--duration"),
        (["--processes", "0"], "--processes"),
        (["--processes", "1000"], "--processes"),
        (["--turns", "1000", "--think", "3600"], "at most 3600 s"),  # a 1000-hour script
    ],
)
def test_load_options_out_of_range(counter: Counter, args: list[str], names: str) -> None:
    assert_usage_error(run_cli("load", counter.uri, *args), names, counter)


@pytest.mark.parametrize(
    ("yaml", "names"),
    [
        ("sample_rate: 1\n", "sample_rate must be at least 8000"),
        ("sample_rate: 100000000000\n", "sample_rate must be at most 48000"),
        ("answer_silence_ms: 1.0e+15\n", "answer_silence_ms must be at most"),
        ("stop_silence_ms: .inf\n", "stop_silence_ms must be a finite number"),
        ("max_answer_secs: 1.0e+300\n", "max_answer_secs must be at most"),
    ],
)
def test_scenario_values_out_of_range(
    counter: Counter, tmp_path: Path, yaml: str, names: str
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"uri: {counter.uri}\n{yaml}turns:\n  - say: hello\n")
    assert_usage_error(run_cli("test", str(scenario), "--no-transcripts"), names, counter)


@pytest.mark.parametrize(
    ("turn", "names"),
    [
        ("wait: 1.0e+9", "wait must be at most 86400"),
        ("listen: 100000000", "listen must be at most 86400"),
        ("dtmf: '" + "1" * 101 + "'", "up to 100 keys"),
        ("say: '" + "a" * 5001 + "'", "longer than 5000 characters"),
        ("say: hi\n    answer_timeout: 1.0e+9", "answer_timeout must be at most"),
    ],
)
def test_scenario_turns_out_of_range(
    counter: Counter, tmp_path: Path, turn: str, names: str
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"uri: {counter.uri}\nturns:\n  - say: hello\n  - {turn}\n")
    assert_usage_error(run_cli("test", str(scenario), "--no-transcripts"), names, counter)


def test_scenario_sizes_are_bounded(counter: Counter, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(f"uri: {counter.uri}\nturns:\n  - say: hello\n" + "# padding\n" * 120_000)
    assert_usage_error(run_cli("test", str(big)), "larger than 1 MiB", counter)
    many = tmp_path / "many.yaml"
    many.write_text(f"uri: {counter.uri}\nturns:\n" + "  - wait: 0\n" * 1001)
    assert_usage_error(run_cli("test", str(many)), "more than 1000 turns", counter)


def test_a_good_clip_still_dials(wavs: Path) -> None:
    """The bounds refuse only what is out of range: with a sane clip, the call is made."""
    listener = Counter()
    try:
        args = ["--play", str(wavs / "ok.wav"), "--sample-rate", str(RATE_MIN)]
        out = run_cli("call", listener.uri, *args, "--open-timeout", "2")
    finally:
        listener.close()
    assert out.returncode in (3, 4, 6, 7), out.stderr  # the listener is no WebSocket server
    assert listener.count >= 1


async def test_an_output_path_that_is_a_symbolic_link_is_refused(tmp_path):
    """Written through, the link would overwrite whatever it points at (issue 25, item 1)."""
    from support.commands import cli

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "out.wav"
    link.symlink_to(target)
    code, _, err = await cli("call", "ws://127.0.0.1:9/ws", "--record", str(link))
    assert code == 2 and "symbolic link" in err and len(err.strip().splitlines()) == 1, err
    assert target.read_text() == "keep me"
