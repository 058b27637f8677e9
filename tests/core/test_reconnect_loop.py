"""The reconnect loop against a scripted dial: attempts, delays, stop and give-up."""

import pytest

from pipecat_wsclient.errors import ConnectionFailure, FailureKind
from pipecat_wsclient.params import ReconnectParams
from pipecat_wsclient.reconnect import Reconnected, give_up_failure, redial
from pipecat_wsclient.retry import ReconnectPolicy

URI = "ws://127.0.0.1:1/ws"


def failure(kind=FailureKind.REFUSED, cause="connection refused", **kw):
    return ConnectionFailure(kind, URI, cause, during_connect=False, **kw)


def scripted_dial(outcomes):
    calls = []

    async def dial():
        calls.append(len(calls) + 1)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    return dial, calls


async def run(policy, dial, *, wanted=True, on_reconnecting=None):
    return await redial(
        policy,
        failure(),
        dial,
        still_wanted=lambda: wanted,
        on_reconnecting=on_reconnecting,
        safe_uri=URI,
        name="t",
    )


async def test_redials_until_connected_and_reports_each_attempt():
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.001, max_delay_secs=0.002))
    dial, calls = scripted_dial([failure(), failure(), None])
    seen = []

    async def on_reconnecting(attempt, delay, cause):
        seen.append((attempt, cause.kind))

    outcome = await run(policy, dial, wanted=True, on_reconnecting=on_reconnecting)
    assert isinstance(outcome, Reconnected)
    assert outcome.attempt == 3
    assert outcome.downtime_secs > 0
    assert calls == [1, 2, 3]
    assert seen == [(1, FailureKind.REFUSED), (2, FailureKind.REFUSED), (3, FailureKind.REFUSED)]


async def test_stops_without_dialing_when_no_longer_wanted():
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.001))
    dial, calls = scripted_dial([None])
    outcome = await run(policy, dial, wanted=False, on_reconnecting=None)
    assert outcome is None
    assert calls == []


async def test_gives_up_on_a_failure_that_is_not_retried():
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.001))
    http_401 = failure(FailureKind.HTTP_STATUS, "HTTP 401 Unauthorized", status_code=401)
    dial, calls = scripted_dial([http_401])
    outcome = await run(policy, dial, wanted=True, on_reconnecting=None)
    assert isinstance(outcome, ConnectionFailure)
    assert outcome.kind is FailureKind.HTTP_STATUS
    assert outcome.status_code == 401
    assert "reconnect attempt 1 failed with HTTP 401 Unauthorized (not retried)" in str(outcome)
    assert calls == [1]


async def test_gives_up_after_max_attempts_naming_the_count_and_last_cause():
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.001, max_attempts=2))
    dial, calls = scripted_dial([failure(), failure(cause="network error: reset")])
    outcome = await run(policy, dial, wanted=True, on_reconnecting=None)
    assert isinstance(outcome, ConnectionFailure)
    assert "gave up reconnecting after 2 attempts" in str(outcome)
    assert "last error: network error: reset" in str(outcome)
    assert calls == [1, 2]


def test_give_up_without_attempts_reports_the_original_failure():
    policy = ReconnectPolicy(ReconnectParams())
    original = failure(FailureKind.CLOSED, "server closed with code 1000", close_code=1000)
    policy.begin(0.0)
    assert give_up_failure(policy, original, URI, now=0.0) is original


@pytest.mark.parametrize("attempts", [1, 3])
def test_give_up_message_says_attempt_or_attempts(attempts):
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.01))
    policy.begin(0.0)
    for _ in range(attempts):
        assert policy.next_delay(0.0, failure()) is not None
    text = str(give_up_failure(policy, failure(), URI, now=1.5))
    assert f"after {attempts} attempt{'s' if attempts > 1 else ''} in 1.5s" in text


@pytest.mark.parametrize("attempts", [0, 2])
def test_give_up_because_the_call_is_ending_says_so_and_names_the_last_error(attempts):
    """Issue 24, item 1: an outage under way when the call starts ending is stopped."""
    policy = ReconnectPolicy(ReconnectParams(first_delay_secs=0.01))
    policy.begin(0.0)
    for _ in range(attempts):
        assert policy.next_delay(0.0, failure()) is not None
    original = failure(FailureKind.WRITE_TIMEOUT, "send blocked")
    final = give_up_failure(policy, original, URI, now=0.5, why="the call is ending")
    assert final is not original  # even with no attempt yet: the message says why
    assert final.kind is FailureKind.WRITE_TIMEOUT
    text = str(final)
    tried = f"after {attempts} attempts in 0.5s" if attempts else "before any attempt"
    assert f"stopped reconnecting {tried}" in text
    assert "the call is ending; last error: send blocked" in text
