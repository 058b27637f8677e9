"""What a Locust user fires for one call, from a real call.

Run in a subprocess: importing ``pipecat_wsclient.locust`` imports Locust,
which monkey-patches the importing process with gevent.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, json
from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.call import CallOptions, bundled_clip, run_call
from pipecat_wsclient.locust.events import call_events
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer

async def main():
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:
        clip = read_wav(bundled_clip(), 16000)
        return await run_call(CallOptions(server.uri, audio=clip, listen=1.0))

events = call_events(asyncio.run(main()))
print(json.dumps([[e.name, e.ms, e.exception is None] for e in events]))
"""


@pytest.mark.slow  # a real call in a subprocess (Locust monkey-patches its importer)
@pytest.mark.timeout(120)
def test_an_echo_fires_overlap_events_never_a_response():
    """``serve``'s echo talks back while we speak: one ``overlap`` per question, no answer."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = json.loads(done.stdout.strip().splitlines()[-1])
    names = [name for name, _, _ in events]
    assert names[0] == "connect" and names[-1] == "call", names
    assert names.count("overlap") == 2 and "response" not in names, names
    assert all(ok for _, _, ok in events), events
    overlaps = [ms for name, ms, _ in events if name == "overlap"]
    assert all(ms > 100 for ms in overlaps), overlaps  # the echo begins right after our onset
