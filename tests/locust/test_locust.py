"""The Locust integration, run for real: a master and two workers on loopback.

Every process is a subprocess (``python -m locust``): importing Locust here
would monkey-patch this test process with gevent.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Locust masters and workers in subprocesses

# Not importorskip: importing Locust monkey-patches the importing process.
if importlib.util.find_spec("locust") is None:
    pytest.skip("Locust is not installed (pip install -e '.[locust]')", allow_module_level=True)

ROOT = Path(__file__).parents[2]
LOCUSTFILE = ROOT / "examples" / "locustfile.py"
USERS = 4
RUN_SECS = 15
CALL_SECS = 8.0
"""About how long one call of the example lasts: the 6.24 s clip, 1 s of think, 0.7 s."""
TURNS_PER_CALL = 2
"""The bundled clip asks two questions, and the example plays it once per call."""

# Loaded next to the example on the workers: counts the events each worker
# fires and writes them out when it quits, to check the master's aggregate.
TALLY = """
import json, os
from locust import events
from locust.runners import WorkerRunner

counts = {}

@events.request.add_listener
def count(name, exception=None, **kwargs):
    key = f"{name}:{'fail' if exception else 'ok'}"
    counts[key] = counts.get(key, 0) + 1

@events.quitting.add_listener
def dump(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        path = os.path.join(os.environ["TALLY_DIR"], f"worker-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump(counts, f)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def locust(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", *args],
        cwd=log.parent,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def wait(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{proc.args} did not end in {timeout} s; log:\n{tail(log)}")


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


@contextlib.contextmanager
def tone_server(log: Path) -> Iterator[str]:
    """``pipecat-wsclient serve --mode tone`` in a subprocess; yields its URI."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pipecat_wsclient", "serve", "--mode", "tone"),
            *("--port", "0", "--latency", "0.3", "--verbose"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first line, once listening
        match = re.search(r"on (ws://127\.0\.0\.1:\d+/ws) ", line)
        assert match, f"server did not start: {line!r}\n{tail(log)}"
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@contextlib.contextmanager
def http_401_server() -> Iterator[str]:
    """A TCP server that answers every WebSocket handshake with HTTP 401."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: 12\r\nConnection: close\r\n\r\nno such key\n"
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # By name: resolving it goes through the asyncio loop's executor, which
        # must run on a real thread under Locust's monkey patching.
        yield f"ws://localhost:{listener.getsockname()[1]}/ws"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.timeout(240)
def test_distributed_run_aggregates_calls_from_two_workers(tmp_path):
    server_log = tmp_path / "server.log"
    tally_dir = tmp_path / "tally"
    tally_dir.mkdir()
    (tmp_path / "tally.py").write_text(TALLY)
    files = f"{LOCUSTFILE},{tmp_path / 'tally.py'}"
    port = free_port()
    started = time.monotonic()
    with tone_server(server_log) as uri:
        master_log = tmp_path / "master.log"
        master = locust(
            "-f", files, "--headless", "--master",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", "2", "-u", str(USERS), "-r", str(USERS),
            "-t", f"{RUN_SECS}s", "--csv", str(tmp_path / "run"), "--host", uri,
            log=master_log,
        )  # fmt: skip
        workers = []
        for n in (1, 2):
            log = tmp_path / f"worker{n}.log"
            proc = locust(
                "-f", files, "--worker", "--master-host", "127.0.0.1",
                "--master-port", str(port),
                log=log, env={"TALLY_DIR": str(tally_dir)},
            )  # fmt: skip
            workers.append((proc, log))
        master_rc = wait(master, master_log, 120)
        worker_rcs = [wait(proc, log, 30) for proc, log in workers]
    elapsed = time.monotonic() - started
    print(f"distributed run took {elapsed:.1f} s")

    assert master_rc == 0, tail(master_log)
    assert worker_rcs == [0, 0], [tail(log) for _, log in workers]

    stats = rows(tmp_path / "run_stats.csv")
    for name in ("connect", "first_answer", "response", "call"):
        assert name in stats, f"no {name!r} row in {list(stats)}"
        assert stats[name]["Type"] == "WS"
        assert int(stats[name]["Request Count"]) > 0, stats[name]
    for name in ("connect", "first_answer", "call"):
        assert int(stats[name]["Failure Count"]) == 0, stats[name]
    count = {name: int(row["Request Count"]) for name, row in stats.items()}

    # Each worker fired events, and the master's aggregate is exactly their sum.
    tallies = [json.loads(p.read_text()) for p in sorted(tally_dir.glob("worker-*.json"))]
    assert len(tallies) == 2, tallies
    for tally in tallies:
        assert tally.get("connect:ok", 0) > 0, tallies
    for name in ("connect", "first_answer", "response", "call"):
        fired = sum(t.get(f"{name}:ok", 0) + t.get(f"{name}:fail", 0) for t in tallies)
        assert count[name] == fired, (name, count, tallies)

    # Every call reported connects once, answers once and completes once...
    assert count["connect"] == count["first_answer"] == count["call"]
    # ...each of the 4 users completed at least one call in the 15 s...
    assert count["call"] >= USERS
    assert count["call"] <= USERS * (RUN_SECS // CALL_SECS + 1)
    # ...and each completed call answered both questions of the clip (a turn
    # or so of slack for a busy 2-core machine, where a stall in sending can
    # split an utterance or delay an answer past the end of the call).
    failed_responses = int(stats["response"]["Failure Count"])
    assert abs(count["response"] - TURNS_PER_CALL * count["call"]) <= 2, count
    assert failed_responses <= 2, stats["response"]

    # The server accepted one connection per reported call, plus the calls
    # still in flight when the run ended (stopped, so not reported): at most
    # one per user.
    accepted = len(re.findall(r"VoiceServer: connection from .+ to /", server_log.read_text()))
    assert count["connect"] <= accepted <= count["connect"] + USERS, (accepted, count)
    print(f"master's counts {count}; server accepted {accepted} connections")

    # The tone server answers 0.3 s after each utterance ends.
    assert 200 <= float(stats["response"]["Median Response Time"]) <= 400, stats["response"]
    assert float(stats["connect"]["Median Response Time"]) < 1000, stats["connect"]
    assert float(stats["call"]["Average Content Size"]) > 0  # bytes heard


@pytest.mark.timeout(240)
@pytest.mark.parametrize("failure", ["refused", "http_401"])
def test_connect_failures_are_reported_as_failed_requests(tmp_path, failure):
    with contextlib.ExitStack() as stack:
        if failure == "refused":
            uri = f"ws://127.0.0.1:{free_port()}/ws"
        else:
            uri = stack.enter_context(http_401_server())
        log = tmp_path / "locust.log"
        proc = locust(
            "-f", str(LOCUSTFILE), "--headless", "-u", "2", "-r", "2", "-t", "3s",
            "--csv", str(tmp_path / "run"), "--host", uri,
            log=log,
        )  # fmt: skip
        rc = wait(proc, log, 60)
    assert rc == 1, tail(log)  # Locust's exit code when requests failed

    stats = rows(tmp_path / "run_stats.csv")
    assert int(stats["connect"]["Failure Count"]) > 0, stats
    assert stats["connect"]["Failure Count"] == stats["connect"]["Request Count"]
    assert "response" not in stats and "call" not in stats

    with (tmp_path / "run_failures.csv").open(newline="") as f:
        failures = list(csv.DictReader(f))
    assert failures, "no rows in run_failures.csv"
    assert {row["Name"] for row in failures} == {"connect"}
    error = failures[0]["Error"]
    if failure == "refused":
        assert error.startswith("CallFailed('refused: "), error
        assert "connection refused" in error
    else:
        assert error.startswith("CallFailed('http_401: "), error
        assert "401" in error


SCENARIO_LOCUSTFILE = """
from pipecat_wsclient.locust import VoiceCallUser


class Caller(VoiceCallUser):
    scenario = {scenario!r}
"""


@pytest.mark.timeout(180)
def test_a_scenario_user_reports_each_turn_with_its_expectation(tmp_path):
    """Two turns against the tone server (it answers 300 ms after our speech):
    the first expects a response within 1500 ms, the second within 50 ms."""
    scenario = tmp_path / "tone.yaml"
    scenario.write_text(
        "name: tone\n"
        "turns:\n"
        "  - say: What are your opening hours?\n"
        "    expect: {response_ms_max: 1500}\n"
        "  - say: And on Saturday?\n"
        "    expect: {response_ms_max: 50}\n"
    )
    locustfile = tmp_path / "scenario_locustfile.py"
    locustfile.write_text(SCENARIO_LOCUSTFILE.format(scenario=str(scenario)))
    log = tmp_path / "locust.log"
    with tone_server(tmp_path / "server.log") as uri:
        proc = locust(
            "-f", str(locustfile), "--headless", "-u", "2", "-r", "2", "-t", "12s",
            "--csv", str(tmp_path / "run"), "--host", uri,
            log=log,
        )  # fmt: skip
        rc = wait(proc, log, 90)
    assert rc == 1, tail(log)  # the second turn fails its expectation
    stats = rows(tmp_path / "run_stats.csv")
    first = stats["turn 1: What are your opening hours?"]
    second = stats["turn 2: And on Saturday?"]
    assert int(first["Request Count"]) >= 2 and first["Failure Count"] == "0", stats
    assert 250 <= float(first["Median Response Time"]) <= 600, first
    assert second["Failure Count"] == second["Request Count"] != "0", stats
    assert stats["call"]["Failure Count"] == "0" and stats["connect"]["Failure Count"] == "0"
    with (tmp_path / "run_failures.csv").open(newline="") as f:
        failures = list(csv.DictReader(f))
    assert {row["Name"] for row in failures} == {"turn 2: And on Saturday?"}
    assert "expectation: response_ms" in failures[0]["Error"]
    assert "> 50" in failures[0]["Error"]
