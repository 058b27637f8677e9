"""A simulated call as Locust events: turns by kind, then the judge's verdicts.

Run in a subprocess: importing ``pipecat_wsclient.locust`` imports Locust,
which monkey-patches the importing process with gevent.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
from pipecat_wsclient.locust.events import scenario_events
from pipecat_wsclient.scenario.results import TurnResult
from pipecat_wsclient.scenario.run import ScenarioResult
from pipecat_wsclient.scenario.simulation import SimulationOutcome

outcome = SimulationOutcome(
    ended_by="end_call",
    turns=2,
    goal={"verdict": "no", "reason": "the bot never said /nine/"},
    metrics=[
        {"name": "polite", "kind": "judged", "score": 0.0, "passed": False, "reason": "r"},
        {"name": "calls", "kind": "not observable from outside", "score": None,
         "passed": False, "reason": ""},
    ],
)
result = ScenarioResult(name="caller", uri="ws://x/ws", protocol="twilio", connect_ms=12.0)
result.duration_secs = 20.0
result.turns = [
    TurnResult("persona 1: Hello, what are your hours?", "say", response_ms=800.0),
    TurnResult("persona 2 (over the bot): Bye", "barge_in", barge_in_ms=300.0),
]
result.simulation = outcome
events = scenario_events(result)
names = [e.name for e in events]
# Turns are named by kind (a persona's words differ per call), then the verdicts.
assert names == ["connect", "turn 1: say", "turn 2: barge_in", "goal", "metric: polite", "call"]
by_name = {e.name: e for e in events}
assert by_name["turn 1: say"].ms == 800.0
assert by_name["turn 2: barge_in"].ms == 300.0
assert by_name["goal"].ms == 20000.0
assert "nine" in str(by_name["goal"].exception)
assert by_name["metric: polite"].ms == 0.0
assert by_name["metric: polite"].exception is not None
assert by_name["call"].exception is None
print("OK")
"""


def test_a_simulated_call_as_locust_events() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")
