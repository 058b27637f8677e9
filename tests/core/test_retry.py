"""Reconnect decisions: failure classification, backoff and the policy (pure, no I/O)."""

import itertools

import pytest

from pipecat_wsclient.errors import ConnectionFailure, FailureKind
from pipecat_wsclient.params import ReconnectParams, WebsocketClientParams
from pipecat_wsclient.retry import ReconnectPolicy, backoff, is_transient

URI = "ws://h/ws"
ALMOST_ONE = 0.9999999999


def failure(kind, *, status_code=None, close_code=None):
    return ConnectionFailure(kind, URI, "cause", status_code=status_code, close_code=close_code)


def http(status):
    return failure(FailureKind.HTTP_STATUS, status_code=status)


def closed(code):
    return failure(FailureKind.CLOSED, close_code=code)


def take(iterator, n):
    return list(itertools.islice(iterator, n))


# --- is_transient -------------------------------------------------------------------------------

RETRIED = [
    pytest.param(failure(FailureKind.REFUSED), id="refused"),
    pytest.param(failure(FailureKind.DNS), id="dns"),
    pytest.param(failure(FailureKind.TIMEOUT), id="timeout"),
    pytest.param(failure(FailureKind.NETWORK), id="network"),
    pytest.param(failure(FailureKind.WRITE_TIMEOUT), id="write_timeout"),
    pytest.param(failure(FailureKind.KEEPALIVE), id="keepalive"),
    *(pytest.param(http(s), id=f"http-{s}") for s in (500, 502, 503, 504, 408, 429)),
    *(pytest.param(closed(c), id=f"close-{c}") for c in (1001, 1006, 1011, 1012, 1013, 1014)),
]

NOT_RETRIED = [
    *(
        pytest.param(closed(c), id=f"close-{c}")
        for c in (1000, 1002, 1003, 1007, 1008, 1009, 4000, 4401, 4999)
    ),
    *(pytest.param(http(s), id=f"http-{s}") for s in (400, 401, 403, 404, 410)),
    pytest.param(failure(FailureKind.TLS), id="tls"),
    pytest.param(failure(FailureKind.HANDSHAKE), id="handshake"),
    pytest.param(failure(FailureKind.MESSAGE_TOO_BIG), id="message_too_big"),
]


@pytest.mark.parametrize("fail", RETRIED)
def test_is_transient_retries(fail):
    assert is_transient(fail) is True


@pytest.mark.parametrize("fail", NOT_RETRIED)
def test_is_transient_does_not_retry(fail):
    assert is_transient(fail) is False


# --- backoff ------------------------------------------------------------------------------------


def test_backoff_without_spread_grows_by_factor_up_to_maximum():
    delays = take(backoff(1.0, 2.0, 10.0, 0.5, rand=lambda: 0.5), 7)
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_backoff_growth_uses_factor():
    delays = take(backoff(0.5, 3.0, 100.0, 0.0, rand=lambda: 0.5), 5)
    assert delays == [0.5, 1.5, 4.5, 13.5, 40.5]


@pytest.mark.parametrize("rand", [lambda: 0.0, lambda: 0.5, lambda: ALMOST_ONE])
def test_backoff_first_delay_is_exact_and_not_jittered(rand):
    assert next(backoff(0.05, 2.0, 1.0, 1.0, rand=rand)) == 0.05


def test_backoff_low_rand_applies_minus_jitter():
    delays = take(backoff(1.0, 2.0, 10.0, 0.5, rand=lambda: 0.0), 6)
    # 2, 4, 8, 10, 10 before jitter; each minus 50 %.
    assert delays == [1.0, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_high_rand_applies_plus_jitter_and_caps_after_it():
    delays = take(backoff(1.0, 2.0, 100.0, 0.25, rand=lambda: ALMOST_ONE), 4)
    assert delays[0] == 1.0
    assert delays[1:] == pytest.approx([2.5, 5.0, 10.0])

    capped = take(backoff(1.0, 2.0, 10.0, 0.5, rand=lambda: ALMOST_ONE), 6)
    # 2 -> 3, 4 -> 6, 8 -> 12 capped to 10, then 10 -> 15 capped to 10.
    assert capped[:3] == [1.0, pytest.approx(3.0), pytest.approx(6.0)]
    assert capped[3:] == [10.0, 10.0, 10.0]


def test_backoff_never_exceeds_maximum_nor_goes_negative():
    for rand in (lambda: 0.0, lambda: 0.5, lambda: ALMOST_ONE):
        for jitter in (0.0, 0.5, 1.0, 1.5):
            delays = take(backoff(0.1, 2.0, 3.0, jitter, rand=rand), 20)
            assert all(0.0 <= d <= 3.0 for d in delays), (jitter, delays)


def test_backoff_clamps_negative_to_zero():
    # A jitter over 1 with the lowest rand would go below zero.
    delays = take(backoff(1.0, 2.0, 10.0, 1.5, rand=lambda: 0.0), 4)
    assert delays == [1.0, 0.0, 0.0, 0.0]


def test_backoff_does_not_compound_jitter():
    # The jitter spreads each delay; the next one grows from the unjittered value.
    calls = iter([0.0, ALMOST_ONE, 0.5, 0.5])
    delays = take(backoff(1.0, 2.0, 100.0, 0.5, rand=lambda: next(calls)), 5)
    assert delays[0] == 1.0
    assert delays[1] == 1.0
    assert delays[2] == pytest.approx(6.0)
    assert delays[3:] == [8.0, 16.0]


# --- ReconnectPolicy ----------------------------------------------------------------------------

TRANSIENT = failure(FailureKind.REFUSED)
FATAL = http(401)


def params(**overrides):
    base = {
        "first_delay_secs": 0.05,
        "backoff_factor": 2.0,
        "max_delay_secs": 1.0,
        "jitter": 0.0,
        "max_attempts": None,
        "max_outage_secs": None,
    }
    base.update(overrides)
    return ReconnectParams(**base)


def test_policy_delay_sequence():
    policy = ReconnectPolicy(params(), rand=lambda: 0.5)
    policy.begin(100.0)
    assert policy.attempts == 0
    delays = [policy.next_delay(100.0, TRANSIENT) for _ in range(7)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.attempts == 7


def test_policy_uses_injected_rand_for_jitter():
    policy = ReconnectPolicy(params(jitter=0.5), rand=lambda: 0.0)
    policy.begin(0.0)
    delays = [policy.next_delay(0.0, TRANSIENT) for _ in range(4)]
    assert delays == [0.05, 0.05, 0.1, 0.2]


def test_policy_max_attempts_stops_after_n():
    policy = ReconnectPolicy(params(max_attempts=3), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(0.0, TRANSIENT) == 0.05
    assert policy.next_delay(0.1, TRANSIENT) == 0.1
    assert policy.next_delay(0.2, TRANSIENT) == 0.2
    assert policy.attempts == 3
    assert policy.next_delay(0.3, TRANSIENT) is None
    assert policy.next_delay(0.4, TRANSIENT) is None
    assert policy.attempts == 3


def test_policy_max_outage_gives_up_when_next_delay_would_exceed_it():
    policy = ReconnectPolicy(
        params(first_delay_secs=1.0, max_delay_secs=100.0, max_outage_secs=10.0),
        rand=lambda: 0.5,
    )
    policy.begin(100.0)
    assert policy.next_delay(100.0, TRANSIENT) == 1.0  # 0 + 1 <= 10
    assert policy.next_delay(104.0, TRANSIENT) == 2.0  # 4 + 2 <= 10
    assert policy.attempts == 2
    assert policy.next_delay(107.0, TRANSIENT) is None  # 7 + 4 > 10
    assert policy.attempts == 2


def test_policy_max_outage_allows_exactly_reaching_the_limit():
    policy = ReconnectPolicy(
        params(first_delay_secs=1.0, max_delay_secs=100.0, max_outage_secs=10.0),
        rand=lambda: 0.5,
    )
    policy.begin(100.0)
    assert policy.next_delay(100.0, TRANSIENT) == 1.0
    assert policy.next_delay(101.0, TRANSIENT) == 2.0
    assert policy.next_delay(106.0, TRANSIENT) == 4.0  # 6 + 4 == 10
    assert policy.attempts == 3


def test_policy_max_outage_gives_up_on_first_delay_if_already_too_late():
    policy = ReconnectPolicy(params(first_delay_secs=1.0, max_outage_secs=5.0), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(4.5, TRANSIENT) is None
    assert policy.attempts == 0


@pytest.mark.parametrize("fail", NOT_RETRIED)
def test_policy_non_transient_gives_up_at_once(fail):
    policy = ReconnectPolicy(params(max_attempts=5), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(0.0, fail) is None
    assert policy.attempts == 0
    # A later transient failure still starts from the first delay.
    assert policy.next_delay(0.0, TRANSIENT) == 0.05
    assert policy.attempts == 1


def test_policy_classifier_true_retries_401():
    seen = []

    def classifier(f):
        seen.append(f)
        return True

    policy = ReconnectPolicy(params(classifier=classifier), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(0.0, FATAL) == 0.05
    assert policy.attempts == 1
    assert seen == [FATAL]


def test_policy_classifier_false_refuses_503():
    policy = ReconnectPolicy(params(classifier=lambda f: False), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(0.0, http(503)) is None
    assert policy.attempts == 0


def test_policy_classifier_none_falls_back_to_default():
    policy = ReconnectPolicy(params(classifier=lambda f: None), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.should_retry(http(503)) is True
    assert policy.should_retry(FATAL) is False
    assert policy.next_delay(0.0, FATAL) is None
    assert policy.attempts == 0
    assert policy.next_delay(0.0, http(503)) == 0.05
    assert policy.attempts == 1


def test_policy_classifier_can_mix_verdicts():
    def classifier(f):
        if f.status_code == 401:
            return True
        if f.status_code == 503:
            return False
        return None

    policy = ReconnectPolicy(params(classifier=classifier), rand=lambda: 0.5)
    assert policy.should_retry(http(401)) is True
    assert policy.should_retry(http(503)) is False
    assert policy.should_retry(http(502)) is True
    assert policy.should_retry(http(403)) is False


def test_policy_begin_again_resets_attempts_and_delays():
    policy = ReconnectPolicy(params(max_attempts=3), rand=lambda: 0.5)
    policy.begin(0.0)
    assert [policy.next_delay(0.0, TRANSIENT) for _ in range(4)] == [0.05, 0.1, 0.2, None]
    assert policy.attempts == 3

    policy.begin(50.0)
    assert policy.attempts == 0
    assert policy.elapsed(50.0) == 0.0
    assert [policy.next_delay(50.0, TRANSIENT) for _ in range(4)] == [0.05, 0.1, 0.2, None]


def test_policy_begin_resets_outage_clock():
    policy = ReconnectPolicy(
        params(first_delay_secs=1.0, max_delay_secs=1.0, max_outage_secs=3.0), rand=lambda: 0.5
    )
    policy.begin(0.0)
    assert policy.next_delay(2.5, TRANSIENT) is None  # 2.5 + 1 > 3
    policy.begin(10.0)
    assert policy.next_delay(11.5, TRANSIENT) == 1.0  # 1.5 + 1 <= 3


def test_policy_elapsed():
    policy = ReconnectPolicy(params(), rand=lambda: 0.5)
    policy.begin(1000.0)
    assert policy.elapsed(1000.0) == 0.0
    assert policy.elapsed(1002.5) == 2.5
    assert policy.elapsed(1030.0) == 30.0


# --- ReconnectParams defaults -------------------------------------------------------------------


def test_reconnect_on_by_default():
    reconnect = WebsocketClientParams().reconnect
    assert isinstance(reconnect, ReconnectParams)
    assert reconnect.first_delay_secs <= 0.1
    assert reconnect.retry_initial_connect is False
    assert reconnect.buffer_audio_secs == 2.0
    assert reconnect.classifier is None


def test_reconnect_defaults_give_a_working_policy():
    policy = ReconnectPolicy(ReconnectParams(), rand=lambda: 0.5)
    policy.begin(0.0)
    assert policy.next_delay(0.0, TRANSIENT) == ReconnectParams().first_delay_secs
    assert policy.next_delay(0.0, FATAL) is None


def test_reconnect_can_be_turned_off():
    assert WebsocketClientParams(reconnect=None).reconnect is None


def test_reconnect_params_instances_are_independent():
    a = WebsocketClientParams()
    b = WebsocketClientParams()
    assert a.reconnect is not b.reconnect


def test_policy_remembers_the_failure_it_last_decided_on():
    """The outage's last error, for the report when the redial is stopped from outside."""
    policy = ReconnectPolicy(params(max_attempts=1))
    policy.begin(0.0)
    assert policy.last_failure is None
    first, second = failure(FailureKind.NETWORK), failure(FailureKind.REFUSED)
    assert policy.next_delay(0.0, first) is not None
    assert policy.last_failure is first
    assert policy.next_delay(0.1, second) is None  # given up: still the one decided on
    assert policy.last_failure is second
    policy.begin(1.0)
    assert policy.last_failure is None  # a new outage
