#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What one call reports to Locust: its requests, pure (no gevent, no I/O).

:func:`call_events` turns a :class:`~pipecat_wsclient.caller.result.CallResult`
(and :func:`scenario_events` a scenario's result) into the ``request``
events :class:`~pipecat_wsclient.locust.VoiceCallUser` fires (see the
package docs for what each one means).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipecat_wsclient.caller.outcome import EXIT_INTERRUPTED, EXIT_OK
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.load.run import error_class
from pipecat_wsclient.scenario.persona_spec import NOT_OBSERVABLE

if TYPE_CHECKING:
    from pipecat_wsclient.scenario.run import ScenarioResult

REQUEST_TYPE = "WS"
"""The ``request_type`` of every event fired."""


class CallFailed(Exception):
    """A call that failed, as reported to Locust: ``<error class>: <reason>``.

    Attributes:
        kind: The error class (``refused``, ``http_401``, ``timeout``, ``tls``,
            ``network``, ``dropped``, ``no_answer``, ``expectation``, ``error``).
        reason: The one-line reason.
    """

    def __init__(self, kind: str, reason: str):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class CallEvent:
    """One Locust ``request`` event of type ``WS``.

    Parameters:
        name: ``connect``, ``first_answer``, ``response``, ``overlap`` or ``call``.
        ms: The response time.
        length: The response length (bytes received, for ``call``).
        exception: Set when the request failed.
    """

    name: str
    ms: float
    length: int = 0
    exception: Exception | None = None


def call_events(result: CallResult) -> list[CallEvent]:
    """The events a call reports, in the order they are fired.

    Args:
        result: The finished call.

    Returns:
        ``connect`` (failed if the call never connected, and then alone),
        ``first_answer``, one ``response`` per turn, then ``call``; nothing
        for an interrupted call (a Locust user stopped).
    """
    if result.exit_code == EXIT_INTERRUPTED:
        return []
    kind = error_class(result)
    reason = (result.error or "").replace("\n", " ")
    if result.connect_ms is None:
        if kind == "dropped":  # a failed handshake or an early close, not a lost call
            kind = "handshake" if result.exit_code == 4 else "connect"
        failure = CallFailed(kind or "error", reason or "did not connect")
        return [CallEvent("connect", result.duration_secs * 1e3, exception=failure)]
    events = [CallEvent("connect", result.connect_ms)]
    completed = result.exit_code == EXIT_OK
    if result.first_answer_ms is not None:
        events.append(CallEvent("first_answer", result.first_answer_ms))
    elif completed:
        no_answer = CallFailed("no_answer", "no answer audio")
        events.append(CallEvent("first_answer", 0.0, exception=no_answer))
    for n, turn in enumerate(result.turns, 1):
        latency, overlap = turn["latency_ms"], turn.get("overlap_ms")
        if latency is not None:
            events.append(CallEvent("response", latency))
        elif overlap is not None:
            # The bot began before our speech ended (an echo, a bot talking over us).
            events.append(CallEvent("overlap", overlap))
        elif completed:
            unanswered = CallFailed("no_answer", f"turn {n} was not answered")
            events.append(CallEvent("response", 0.0, exception=unanswered))
    ended_early = None
    if not completed:
        ended_early = CallFailed(kind or "dropped", reason or "the call ended early")
    events.append(
        CallEvent("call", result.duration_secs * 1e3, length=result.bytes_in, exception=ended_early)
    )
    return events


def scenario_events(result: ScenarioResult) -> list[CallEvent]:
    """The events of a scenario call: ``connect``, one per turn, then ``call``.

    A turn's event is named ``turn N: label``; its response time is the
    turn's ``barge_in_ms`` for a barge-in, else its ``response_ms`` (0 when
    not measured); it fails with kind ``expectation`` and the failed
    expectations as the reason. ``call`` fails only when the call could not
    be made or was lost.

    Args:
        result: The finished scenario.

    Returns:
        The events, in the order they are fired; nothing for an interrupted run.
    """
    from pipecat_wsclient.scenario.run import EXIT_EXPECTATION

    if result.exit_code == EXIT_INTERRUPTED:
        return []
    reason = (result.error or "").replace("\n", " ")
    if result.connect_ms is None:
        failure = CallFailed("connect", reason or "did not connect")
        return [CallEvent("connect", result.duration_secs * 1e3, exception=failure)]
    events = [CallEvent("connect", result.connect_ms)]
    simulated = result.simulation
    for n, turn in enumerate(result.turns, 1):
        ms = turn.barge_in_ms if turn.kind == "barge_in" else turn.response_ms
        failed = None
        if turn.failures:
            failed = CallFailed("expectation", "; ".join(turn.failures))
        # A persona's lines differ from call to call: its turns are named by kind.
        label = turn.kind if simulated is not None else turn.label
        events.append(CallEvent(f"turn {n}: {label}", ms or 0.0, exception=failed))
    if simulated is not None:
        events += _simulation_events(simulated, result.duration_secs)
    lost = None
    if result.exit_code not in (EXIT_OK, EXIT_EXPECTATION):
        lost = CallFailed("dropped", reason or "the call ended early")
    events.append(CallEvent("call", result.duration_secs * 1e3, exception=lost))
    return events


def _simulation_events(outcome: Any, duration_secs: float) -> list[CallEvent]:
    """A simulated call's verdicts: ``goal`` (timed as the call), and ``metric: NAME``.

    A metric's "response time" is its score times 100 (0-100), so Locust's
    statistics aggregate the scores; a metric that failed fails its event,
    one not observable from outside is left out.
    """
    goal = outcome.goal
    failed = None
    if goal.get("verdict") != "yes":
        failed = CallFailed("judge", goal.get("reason") or outcome.error or "no verdict")
    events = [CallEvent("goal", duration_secs * 1e3, exception=failed)]
    for metric in outcome.metrics:
        if metric["kind"] == NOT_OBSERVABLE:
            continue
        failed = None if metric["passed"] else CallFailed("judge", metric["reason"])
        score = 0.0 if metric["score"] is None else float(metric["score"]) * 100
        events.append(CallEvent(f"metric: {metric['name']}", score, exception=failed))
    return events
