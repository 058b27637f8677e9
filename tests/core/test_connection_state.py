"""The session's connection state machine (pure, no I/O), tested synchronously.

:class:`~pipecat_wsclient.connection_state.ConnectionState` must make exactly the
transitions ``session.py`` made when it assigned its state itself, and refuse
the others. ``EXPECTED`` below is that old behaviour, written out by hand from
the old assignments (not derived from the module's tables): for every event,
the states it may come in and where it leads. Every state x event pair is
checked against it; the ordinary life cycles are replayed one by one; and a
generated run (``@pytest.mark.generated``, budget in ``tests/budget.py``)
drives random event sequences and checks the properties' invariants after
every step: exactly one answer to "where are we", never open and reconnecting,
closed-by-us only after a close request, a redial wanted only in its own state.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from budget import budget
from pipecat_wsclient import connection_state
from pipecat_wsclient.connection_state import (
    OVERLAP_FROM,
    USUAL_FROM,
    ConnectionState,
    InvalidTransition,
    SessionState,
)

IDLE = SessionState.IDLE
CONNECTING = SessionState.CONNECTING
OPEN = SessionState.OPEN
RECONNECTING = SessionState.RECONNECTING
CLOSING = SessionState.CLOSING
ALL = frozenset(SessionState)

# event -> (the states it may come in, where it leads from a state), from the
# old session.py: ``connect()`` set CONNECTING unless OPEN (and never found
# CONNECTING: it holds a lock and resets it in ``finally``); ``_dial`` set OPEN,
# ``disconnect()``/``abort()`` CLOSING, ``_retry`` its mode's state, give-up
# and ``_wait_receive_task`` IDLE, whatever the state; the end of a socket set
# IDLE (ours: CLOSING) or RECONNECTING/IDLE (a loss, never when CLOSING);
# ``_stop_reconnecting`` and connect's ``finally`` changed one state only.
EXPECTED: dict[str, tuple[frozenset[SessionState], Callable[[SessionState], SessionState]]] = {
    "dial_started": (frozenset({IDLE, RECONNECTING, CLOSING}), lambda s: CONNECTING),
    "opened": (ALL, lambda s: OPEN),
    "close_requested": (ALL, lambda s: CLOSING),
    "closed": (frozenset({CLOSING}), lambda s: IDLE),
    "lost(reconnect=True)": (ALL - {CLOSING}, lambda s: RECONNECTING),
    "lost(reconnect=False)": (ALL - {CLOSING}, lambda s: IDLE),
    "redial_started(initial=True)": (ALL, lambda s: CONNECTING),
    "redial_started(initial=False)": (ALL, lambda s: RECONNECTING),
    "gave_up": (ALL, lambda s: IDLE),
    "dropped": (ALL - {OPEN}, lambda s: IDLE),
    "redial_cancelled": (ALL, lambda s: IDLE if s is RECONNECTING else s),
    "connect_returned": (ALL, lambda s: IDLE if s is CONNECTING else s),
}

EVENTS: dict[str, Callable[[ConnectionState], None]] = {
    "dial_started": lambda c: c.dial_started(),
    "opened": lambda c: c.opened(),
    "close_requested": lambda c: c.close_requested(),
    "closed": lambda c: c.closed(),
    "lost(reconnect=True)": lambda c: c.lost(reconnect=True),
    "lost(reconnect=False)": lambda c: c.lost(reconnect=False),
    "redial_started(initial=True)": lambda c: c.redial_started(initial=True),
    "redial_started(initial=False)": lambda c: c.redial_started(initial=False),
    "gave_up": lambda c: c.gave_up(),
    "dropped": lambda c: c.dropped(),
    "redial_cancelled": lambda c: c.redial_cancelled(),
    "connect_returned": lambda c: c.connect_returned(),
}


def _answers(c: ConnectionState) -> dict[str, bool]:
    return {
        "idle": c.state is IDLE,
        "connecting": c.connecting,
        "open": c.is_open,
        "reconnecting": c.reconnecting,
        "closed_by_us": c.closed_by_us,
    }


# -- every state x event ----------------------------------------------------


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.name)
@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_in_every_state(event: str, state: SessionState):
    legal, to = EXPECTED[event]
    c = ConnectionState(state)
    if state in legal:
        EVENTS[event](c)
        assert c.state is to(state)
    else:
        with pytest.raises(InvalidTransition) as caught:
            EVENTS[event](c)
        assert c.state is state  # an illegal event changes nothing
        assert caught.value.state is state
        assert caught.value.event.startswith(event.split("(")[0])
        assert state.name in str(caught.value)


def test_illegal_transitions_are_the_ones_the_old_code_never_made():
    illegal = {(e, s) for e, (legal, _) in EXPECTED.items() for s in ALL - legal}
    assert illegal == {
        ("dial_started", OPEN),
        ("dial_started", CONNECTING),
        ("closed", IDLE),
        ("closed", CONNECTING),
        ("closed", OPEN),
        ("closed", RECONNECTING),
        ("lost(reconnect=True)", CLOSING),
        ("lost(reconnect=False)", CLOSING),
        ("dropped", OPEN),
    }


def test_the_tables_split_usual_from_overlap():
    assert USUAL_FROM.keys() == OVERLAP_FROM.keys()
    for event in USUAL_FROM:
        assert not USUAL_FROM[event] & OVERLAP_FROM[event], event
        assert USUAL_FROM[event], event
    lost_legal = USUAL_FROM["lost"] | OVERLAP_FROM["lost"]
    assert lost_legal == EXPECTED["lost(reconnect=True)"][0]


def test_invalid_transition_is_a_library_error_and_a_runtime_error():
    with pytest.raises(InvalidTransition) as caught:
        ConnectionState().closed()
    assert isinstance(caught.value, RuntimeError)
    assert str(caught.value) == "closed cannot happen in state IDLE (only in CLOSING)"


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.name)
def test_each_state_has_exactly_one_answer(state: SessionState):
    c = ConnectionState(state)
    assert sum(_answers(c).values()) == 1
    assert c.redial_wanted(initial=True) is (state is CONNECTING)
    assert c.redial_wanted(initial=False) is (state is RECONNECTING)
    assert repr(c) == f"ConnectionState({state.name})"


# -- the session's ordinary paths, one by one ---------------------------------


def _run(*events: str, start: SessionState = IDLE) -> list[SessionState]:
    c = ConnectionState(start)
    seen = []
    for event in events:
        EVENTS[event](c)
        seen.append(c.state)
    return seen


def test_connect_then_disconnect():
    assert _run("dial_started", "opened", "connect_returned", "close_requested", "closed") == [
        CONNECTING,
        OPEN,
        OPEN,
        CLOSING,
        IDLE,
    ]


def test_first_dial_fails_or_is_cancelled():
    assert _run("dial_started", "connect_returned") == [CONNECTING, IDLE]


def test_first_dial_retried_then_given_up():
    # connect(): dial fails, _retry(initial) keeps CONNECTING, gives up -> IDLE
    assert _run("dial_started", "redial_started(initial=True)", "gave_up", "connect_returned") == [
        CONNECTING,
        CONNECTING,
        IDLE,
        IDLE,
    ]


def test_first_dial_retried_then_open():
    assert _run("dial_started", "redial_started(initial=True)", "opened", "connect_returned") == [
        CONNECTING,
        CONNECTING,
        OPEN,
        OPEN,
    ]


def test_lost_reconnected_lost_for_good():
    assert _run(
        "lost(reconnect=True)",
        "redial_started(initial=False)",
        "opened",
        "lost(reconnect=False)",
        start=OPEN,
    ) == [RECONNECTING, RECONNECTING, OPEN, IDLE]


def test_outage_given_up():
    assert _run("lost(reconnect=True)", "redial_started(initial=False)", "gave_up", start=OPEN) == [
        RECONNECTING,
        RECONNECTING,
        IDLE,
    ]


def test_disconnect_during_an_outage_stops_the_redial():
    c = ConnectionState(OPEN)
    c.lost(reconnect=True)
    c.redial_started(initial=False)
    assert c.redial_wanted(initial=False)
    c.redial_cancelled()  # disconnect(): no socket, so no close_requested
    assert c.state is IDLE
    assert not c.redial_wanted(initial=False)


def test_disconnect_does_not_stop_a_first_dials_retries():
    # As before: only cancelling connect() stops them (the transport does).
    c = ConnectionState()
    c.dial_started()
    c.redial_started(initial=True)
    c.redial_cancelled()
    assert c.state is CONNECTING and c.redial_wanted(initial=True)


def test_connect_during_an_outage_takes_over_from_the_redial():
    c = ConnectionState(RECONNECTING)
    c.dial_started()
    assert not c.redial_wanted(initial=False)  # the reconnect loop stops at its next check
    assert c.connecting


def test_abort_then_disconnect_then_the_end():
    assert _run("close_requested", "close_requested", "closed", start=OPEN) == [
        CLOSING,
        CLOSING,
        IDLE,
    ]


def test_the_receive_task_did_not_end():
    assert _run("close_requested", "dropped", start=OPEN) == [CLOSING, IDLE]


def test_write_timeout_keeps_open_until_the_end_is_reported():
    c = ConnectionState(OPEN)  # the socket is aborted; nothing is told to the machine yet
    assert c.is_open
    c.lost(reconnect=False)
    assert c.state is IDLE


# -- the module is pure and the old import path works -------------------------


def test_the_module_imports_no_io():
    tree = ast.parse(Path(connection_state.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "enum", "pipecat_wsclient"}


def test_session_state_is_still_importable_from_the_session():
    from pipecat_wsclient import SessionState as from_root
    from pipecat_wsclient.session import SessionState as from_session

    assert from_session is SessionState and from_root is SessionState


# -- generated event sequences -------------------------------------------------


class ConnectionStateMachine(RuleBasedStateMachine):
    """Rules: every event, in any state; illegal ones must raise and change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.conn = ConnectionState()
        self.changed_by: str | None = None  # the last event that changed the state

    def _event(self, name: str) -> None:
        before = self.conn.state
        legal, to = EXPECTED[name]
        if before not in legal:
            with pytest.raises(InvalidTransition):
                EVENTS[name](self.conn)
            assert self.conn.state is before
            return
        EVENTS[name](self.conn)
        assert self.conn.state is to(before)
        if self.conn.state is not before:
            self.changed_by = name

    @rule()
    def dial_started(self) -> None:
        self._event("dial_started")

    @rule()
    def opened(self) -> None:
        self._event("opened")

    @rule()
    def close_requested(self) -> None:
        self._event("close_requested")

    @rule()
    def closed(self) -> None:
        self._event("closed")

    @rule(reconnect=st.booleans())
    def lost(self, reconnect: bool) -> None:
        self._event(f"lost(reconnect={reconnect})")

    @rule(initial=st.booleans())
    def redial_started(self, initial: bool) -> None:
        self._event(f"redial_started(initial={initial})")

    @rule()
    def gave_up(self) -> None:
        self._event("gave_up")

    @rule()
    def dropped(self) -> None:
        self._event("dropped")

    @rule()
    def redial_cancelled(self) -> None:
        self._event("redial_cancelled")

    @rule()
    def connect_returned(self) -> None:
        self._event("connect_returned")

    @invariant()
    def exactly_one_answer(self) -> None:
        assert sum(_answers(self.conn).values()) == 1

    @invariant()
    def never_open_and_reconnecting(self) -> None:
        assert not (self.conn.is_open and self.conn.reconnecting)

    @invariant()
    def closed_by_us_only_after_a_close_request(self) -> None:
        if self.conn.closed_by_us:
            assert self.changed_by == "close_requested"

    @invariant()
    def open_only_after_a_dial_succeeded(self) -> None:
        if self.conn.is_open:
            assert self.changed_by == "opened"

    @invariant()
    def reconnecting_only_after_a_loss_or_a_reconnect_loop(self) -> None:
        if self.conn.reconnecting:
            assert self.changed_by in ("lost(reconnect=True)", "redial_started(initial=False)")

    @invariant()
    def a_redial_is_wanted_only_in_its_own_state(self) -> None:
        first, again = self.conn.redial_wanted(initial=True), self.conn.redial_wanted(initial=False)
        assert not (first and again)
        assert first is self.conn.connecting and again is self.conn.reconnecting


@pytest.mark.generated
def test_generated_event_sequences():
    run_state_machine_as_test(ConnectionStateMachine, settings=budget(ci=300, long=20_000))
