#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The reconnect loop: redial under :class:`~pipecat_wsclient.retry.ReconnectPolicy`.

``retry.py`` decides (which failures retry, how long to wait, when to give
up) with no I/O; this module only drives it: wait the delay, dial, and
repeat until connected, stopped or given up. The dial itself is passed in,
so the loop knows nothing of sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from pipecat_wsclient.errors import ConnectionFailure
from pipecat_wsclient.retry import ReconnectPolicy


@dataclass(frozen=True)
class Reconnected:
    """A redial succeeded.

    Parameters:
        attempt: The attempt that connected (from 1).
        downtime_secs: From the start of the outage to the new connection.
    """

    attempt: int
    downtime_secs: float


async def redial(
    policy: ReconnectPolicy,
    failure: ConnectionFailure,
    dial: Callable[[], Awaitable[None]],
    *,
    still_wanted: Callable[[], bool],
    on_reconnecting: Callable[[int, float, ConnectionFailure], Awaitable[None]] | None,
    safe_uri: str,
    name: str,
) -> Reconnected | ConnectionFailure | None:
    """Redial until connected, stopped or given up.

    Args:
        policy: The reconnect policy; its outage starts now.
        failure: Why the connection was lost (or the first dial failed).
        dial: Connects, or raises :class:`ConnectionFailure`.
        still_wanted: Asked after each delay; False ends the loop (the
            session is being closed).
        on_reconnecting: Called before each attempt with its number, its
            delay and the last failure.
        safe_uri: The redacted URI, for the final failure.
        name: Who is reconnecting, for log lines.

    Returns:
        :class:`Reconnected`, ``None`` when stopped, or the failure to report
        when the policy gave up.
    """
    loop = asyncio.get_running_loop()
    policy.begin(loop.time())
    last = failure
    while (delay := policy.next_delay(loop.time(), last)) is not None:
        attempt = policy.attempts
        if on_reconnecting is not None:
            await on_reconnecting(attempt, delay, last)
        await asyncio.sleep(delay)
        if not still_wanted():
            return None
        try:
            await dial()
        except ConnectionFailure as e:
            last = e
            logger.debug(f"{name}: reconnect attempt {attempt} failed: {e.cause}")
            continue
        return Reconnected(attempt, policy.elapsed(loop.time()))
    return give_up_failure(policy, last, safe_uri, loop.time())


def give_up_failure(
    policy: ReconnectPolicy,
    last: ConnectionFailure,
    safe_uri: str,
    now: float,
    *,
    why: str | None = None,
) -> ConnectionFailure:
    """The failure to report when the policy, or the caller, stops redialing.

    Args:
        policy: The policy that gave up.
        last: The last failure seen.
        safe_uri: The redacted URI to name.
        now: The current time, on the policy's clock.
        why: Why the caller stopped the redial before the policy gave up
            (e.g. "the call is ending"); None when the policy gave up.

    Returns:
        ``last`` itself when the policy gave up before any attempt, else a
        failure that says how many attempts were made and why it stopped.
    """
    n = policy.attempts
    if why is not None:
        tried = f"after {n} attempt{'s' if n > 1 else ''} in {policy.elapsed(now):.1f}s"
        cause = f"stopped reconnecting {tried if n else 'before any attempt'}: {why}"
        cause += f"; last error: {last.cause}"
        return _failure_like(last, safe_uri, cause)
    if n == 0:
        return last
    if policy.should_retry(last):
        cause = (
            f"gave up reconnecting after {n} attempt{'s' if n > 1 else ''} in "
            f"{policy.elapsed(now):.1f}s; last error: {last.cause}"
        )
    else:
        cause = f"reconnect attempt {n} failed with {last.cause} (not retried)"
    return _failure_like(last, safe_uri, cause)


def _failure_like(last: ConnectionFailure, safe_uri: str, cause: str) -> ConnectionFailure:
    return ConnectionFailure(
        last.kind,
        safe_uri,
        cause,
        status_code=last.status_code,
        close_code=last.close_code,
        close_reason=last.close_reason,
        during_connect=False,
    )
