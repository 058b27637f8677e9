#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Which failures are worth a reconnect, and when to try again (pure, no I/O).

:func:`is_transient` classifies a :class:`ConnectionFailure`;
:func:`backoff` yields the delays; :class:`ReconnectPolicy` puts both together
with the limits of :class:`~pipecat_wsclient.params.ReconnectParams` and is
driven by the session with the event loop's clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pipecat_wsclient.errors import ConnectionFailure, FailureKind

if TYPE_CHECKING:
    from pipecat_wsclient.params import ReconnectParams

RETRY_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
"""Going away, abnormal closure, internal error, service restart, try again later, bad gateway."""

RETRY_HTTP_STATUSES = frozenset({408, 429})
"""Client-side statuses that still mean "try again": request timeout, too many requests."""

_TRANSIENT_KINDS = frozenset(
    {
        FailureKind.REFUSED,
        FailureKind.DNS,
        FailureKind.TIMEOUT,
        FailureKind.NETWORK,
        FailureKind.WRITE_TIMEOUT,
        FailureKind.KEEPALIVE,
    }
)


def is_transient(failure: ConnectionFailure) -> bool:
    """Whether a failure may go away by itself, so reconnecting makes sense.

    Retried: network errors (refused, DNS, reset, unreachable), open timeouts,
    write timeouts and unanswered keepalives; closes with 1001, 1006, 1011,
    1012, 1013 or 1014; HTTP 5xx, 408 and 429 at the handshake.

    Not retried: a normal close (1000), closes for protocol, data or policy
    errors (1002, 1003, 1007, 1008, 1009) and application codes (4000-4999),
    other HTTP 4xx (401, 403, 404, ...), TLS failures and invalid handshakes.

    Args:
        failure: The failure to classify.

    Returns:
        True to retry.
    """
    if failure.kind in _TRANSIENT_KINDS:
        return True
    if failure.kind is FailureKind.HTTP_STATUS and failure.status_code is not None:
        return failure.status_code >= 500 or failure.status_code in RETRY_HTTP_STATUSES
    if failure.kind is FailureKind.CLOSED:
        return failure.close_code in RETRY_CLOSE_CODES
    return False


CLOSE_NORMAL = 1000


def is_call_end(failure: ConnectionFailure) -> bool:
    """Whether the far end ended the call normally: it closed with 1000.

    A server that hangs up (Asterisk when the channel hangs up, a bot that
    ends its pipeline) closes with 1000. That is the end of the call, not a
    failure: the transport ends the pipeline cleanly instead of reporting an
    error.

    Args:
        failure: How the connection ended.

    Returns:
        True for a normal close by the far end.
    """
    return failure.kind is FailureKind.CLOSED and failure.close_code == CLOSE_NORMAL


def backoff(
    first: float,
    factor: float,
    maximum: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield reconnect delays: ``first``, then exponential growth up to ``maximum``.

    Every delay but the first is spread by ``+/- jitter`` (a fraction), so
    many clients dropped at once do not come back at once. The first retry
    is not jittered: it should come fast and predictably.

    Args:
        first: The first delay, in seconds.
        factor: Growth per attempt.
        maximum: Cap on the delay (before jitter is applied, and after).
        jitter: Relative spread, 0 for none.
        rand: Source of uniform numbers in [0, 1) (injectable for tests).

    Yields:
        Delays in seconds.
    """
    yield first
    delay = first
    while True:
        delay = min(delay * factor, maximum)
        spread = delay * jitter * (2 * rand() - 1)
        yield max(0.0, min(delay + spread, maximum))


class ReconnectPolicy:
    """Decide, attempt by attempt, whether and when to redial during one outage.

    Example::

        policy = ReconnectPolicy(params)
        policy.begin(loop.time())
        while (delay := policy.next_delay(loop.time(), failure)) is not None:
            await asyncio.sleep(delay)
            ...
    """

    def __init__(self, params: ReconnectParams, rand: Callable[[], float] = random.random):
        """Initialize the policy.

        Args:
            params: The reconnect settings.
            rand: Source of uniform numbers for the jitter.
        """
        self._params = params
        self._rand = rand
        self._delays: Iterator[float] = iter(())
        self._started = 0.0
        self.attempts = 0
        self.last_failure: ConnectionFailure | None = None
        """The failure the last :meth:`next_delay` decided on (the outage's last error)."""

    def begin(self, now: float) -> None:
        """Start a new outage at ``now``: attempts and delays start over."""
        p = self._params
        self._delays = backoff(
            p.first_delay_secs, p.backoff_factor, p.max_delay_secs, p.jitter, self._rand
        )
        self._started = now
        self.attempts = 0
        self.last_failure = None

    def elapsed(self, now: float) -> float:
        """Seconds since the outage began."""
        return now - self._started

    def should_retry(self, failure: ConnectionFailure) -> bool:
        """Classify a failure with the user's classifier, falling back on :func:`is_transient`."""
        classifier = self._params.classifier
        if classifier is not None:
            verdict = classifier(failure)
            if verdict is not None:
                return verdict
        return is_transient(failure)

    def next_delay(self, now: float, failure: ConnectionFailure) -> float | None:
        """Return the delay before the next attempt, or None to give up.

        Args:
            now: The current monotonic time.
            failure: Why the connection was lost, or why the last attempt failed.

        Returns:
            Seconds to wait before dialing again, or None when the failure is
            not worth retrying or a limit (attempts, outage time) is reached.
        """
        p = self._params
        self.last_failure = failure
        if not self.should_retry(failure):
            return None
        if p.max_attempts is not None and self.attempts >= p.max_attempts:
            return None
        delay = next(self._delays)
        if p.max_outage_secs is not None and self.elapsed(now) + delay > p.max_outage_secs:
            return None
        self.attempts += 1
        return delay
