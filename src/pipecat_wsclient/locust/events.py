#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What one call reports to Locust: its requests, pure (no gevent, no I/O).

:func:`call_events` turns a :class:`~pipecat_wsclient.cli.result.CallResult`
into the ``request`` events :class:`~pipecat_wsclient.locust.VoiceCallUser`
fires (see the package docs for what each one means).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat_wsclient.cli.load import error_class
from pipecat_wsclient.cli.result import EXIT_INTERRUPTED, EXIT_OK, CallResult

REQUEST_TYPE = "WS"
"""The ``request_type`` of every event fired."""


class CallFailed(Exception):
    """A call that failed, as reported to Locust: ``<error class>: <reason>``.

    Attributes:
        kind: The error class (``refused``, ``http_401``, ``timeout``, ``tls``,
            ``network``, ``dropped``, ``no_answer``, ``error``).
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
        name: ``connect``, ``first_answer``, ``response`` or ``call``.
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
        latency = turn["latency_ms"]
        if latency is not None:
            events.append(CallEvent("response", latency))
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
