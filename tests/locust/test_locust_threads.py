"""The Locust bridge's executor: a bounded pool of real OS threads, reused across calls.

Run in a subprocess patched by gevent as a Locust process is (importing
Locust here would monkey-patch this test process).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Locust in subprocesses

if importlib.util.find_spec("locust") is None:
    pytest.skip("Locust is not installed (pip install -e '.[locust]')", allow_module_level=True)

CALLS = 40
GREENLETS = 8
JOBS = 100

SCRIPT = """
import locust  # patches the standard library, as in a Locust process
import asyncio, json, sys, time
import gevent, psutil
from gevent import monkey
from gevent.event import AsyncResult
from pipecat_wsclient.caller.call import CallOptions
from pipecat_wsclient.locust import call_in_greenlet, loop as bridge

assert time.sleep is not monkey.get_original("time", "sleep"), "not patched"
native_id = monkey.get_original("_thread", "get_native_id")
real_sleep = monkey.get_original("time", "sleep")
uri, calls, greenlets, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

resolvers = set()  # native ids of the threads that resolved a name
resolve = bridge._getaddrinfo
def recording(*args):
    resolvers.add(native_id())
    return resolve(*args)
bridge._getaddrinfo = recording

def on_loop(make):
    # Run a coroutine on the bridge's loop; wait for it from this greenlet.
    loop, hub, done = bridge._THREAD.loop(), gevent.get_hub(), AsyncResult()
    def start():
        task = loop.create_task(make())
        task.add_done_callback(lambda t: bridge._notify(hub, done.set, t.result()))
    loop.call_soon_threadsafe(start)
    return done.get()

from loguru import logger
logger.remove()
# Locust's hub always has timers and sockets; this one needs a watcher to wait.
keepalive = gevent.spawn(gevent.sleep, 600)
bridge._THREAD.loop()
before = psutil.Process().num_threads()

# Calls, each resolving "localhost" on the executor.
results = []
def caller(n):
    for _ in range(n):
        options = CallOptions(uri=uri, audio=bytes(3200), listen=0.0, open_timeout=5.0)
        results.append(call_in_greenlet(options))
gevent.joinall([gevent.spawn(caller, calls // greenlets) for _ in range(greenlets)])
after_calls = psutil.Process().num_threads()

# Many blocking jobs at once.
async def burst():
    loop = asyncio.get_running_loop()
    def job(i):
        real_sleep(0.02)
        return i, psutil.Process().num_threads(), native_id()
    done = await asyncio.gather(*(loop.run_in_executor(None, job, i) for i in range(jobs)))
    try:
        await loop.run_in_executor(None, int, "x")
        raised = None
    except ValueError as e:
        raised = str(e)
    to_thread = await asyncio.to_thread(lambda: 42)
    info = await loop.getnameinfo(("127.0.0.1", 80))
    return {
        "results": [i for i, _, _ in done],
        "peak": max(n for _, n, _ in done),
        "workers": len({t for _, _, t in done}),
        "raised": raised,
        "to_thread": to_thread,
        "nameinfo": list(info),
    }
out = on_loop(burst)
out.update(
    limit=bridge.EXECUTOR_THREADS,
    before=before,
    after_calls=after_calls,
    after=psutil.Process().num_threads(),
    resolvers=len(resolvers),
    connected=sum(r.connect_ms is not None for r in results),
    calls=len(results),
)
print("RESULT " + json.dumps(out), flush=True)
keepalive.kill()
"""


def test_executor_threads_are_bounded_and_reused(tmp_path: Path):
    server = subprocess.Popen(
        [sys.executable, "-m", "pipecat_wsclient", "serve", "--mode", "echo", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"on ws://127\.0\.0\.1:(\d+)/ws ", line)
        assert match, line
        uri = f"ws://localhost:{match.group(1)}/ws"  # a name: resolved on the executor
        script = tmp_path / "bridge.py"
        script.write_text(SCRIPT)
        proc = subprocess.run(
            [sys.executable, str(script), uri, str(CALLS), str(GREENLETS), str(JOBS)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()
    found = re.search(r"^RESULT (.*)$", proc.stdout, re.MULTILINE)
    assert found, f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = json.loads(found.group(1))
    limit = out["limit"]
    print(
        f"THREADS {out['calls']} calls: {out['resolvers']} resolver threads, "
        f"threads {out['before']} before, {out['after_calls']} after; {JOBS} jobs at once: "
        f"{out['workers']} workers, peak {out['peak']} threads, {out['after']} after "
        f"(limit {limit})"
    )
    assert out["calls"] == CALLS
    assert out["connected"] == CALLS
    # Every call resolved "localhost" on the executor: on reused threads, not one each.
    assert 1 <= out["resolvers"] <= limit < CALLS
    assert out["after_calls"] <= out["before"] + limit
    # A burst of blocking jobs: at most `limit` workers, all results in order.
    assert out["results"] == list(range(JOBS))
    assert out["workers"] <= limit
    assert out["peak"] <= out["before"] + limit
    assert out["after"] <= out["before"] + limit
    assert out["raised"] == "invalid literal for int() with base 10: 'x'"
    assert out["to_thread"] == 42
    assert len(out["nameinfo"]) == 2
