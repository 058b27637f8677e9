#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Where a session's connection is in its life: a pure state machine, no I/O.

:class:`ConnectionState` is the one place that changes a session's
:class:`SessionState`, as ``websockets``' ``protocol.py`` keeps its own state:
it imports neither asyncio nor ``websockets``. :mod:`pipecat_wsclient.session`
does the I/O and tells it what happened, one method per event (a dial started,
a socket opened, we asked to close, the socket ended, a redial started or gave
up); its properties answer what the session asks (open? ours to close?
redialing?). An event that cannot come in the current state raises
:class:`InvalidTransition` and changes nothing.

:data:`USUAL_FROM` lists the states each event comes in on the session's
ordinary paths; :data:`OVERLAP_FROM` the further states it can come in when the
session's public API overlaps itself (``connect()`` called during an outage or
while ``disconnect()`` closes, ``disconnect()`` from a callback). The session
has always allowed those overlaps, so both are legal.

Example::

    conn = ConnectionState()
    conn.dial_started()                  # IDLE -> CONNECTING
    conn.opened()                        # -> OPEN: conn.is_open
    conn.lost(reconnect=True)            # -> RECONNECTING: conn.reconnecting
    conn.redial_started(initial=False)   # the reconnect loop starts
    conn.redial_wanted(initial=False)    # True until another event changes the state
    conn.gave_up()                       # -> IDLE
    conn.closed()                        # raises InvalidTransition: nothing was closing
"""

from __future__ import annotations

import enum

from pipecat_wsclient.errors import WebsocketClientError

__all__ = [
    "OVERLAP_FROM",
    "USUAL_FROM",
    "ConnectionState",
    "InvalidTransition",
    "SessionState",
]


class SessionState(enum.Enum):
    """Where a session is in its life.

    Parameters:
        IDLE: Not connected; ``connect()`` may be called.
        CONNECTING: Dialing.
        OPEN: Connected.
        RECONNECTING: The connection was lost; the reconnect policy is redialing.
        CLOSING: ``disconnect()`` is closing the connection.
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSING = "closing"


IDLE = SessionState.IDLE
CONNECTING = SessionState.CONNECTING
OPEN = SessionState.OPEN
RECONNECTING = SessionState.RECONNECTING
CLOSING = SessionState.CLOSING
_ALL = frozenset(SessionState)

USUAL_FROM: dict[str, frozenset[SessionState]] = {
    "dial_started": frozenset({IDLE}),
    "opened": frozenset({CONNECTING, RECONNECTING}),
    "close_requested": frozenset({OPEN, CLOSING}),  # CLOSING: abort(), then disconnect()
    "closed": frozenset({CLOSING}),
    "lost": frozenset({OPEN}),
    "redial_started(initial=True)": frozenset({CONNECTING}),
    "redial_started(initial=False)": frozenset({RECONNECTING}),
    "gave_up": frozenset({CONNECTING, RECONNECTING}),
    "dropped": frozenset({CLOSING}),
}
"""Event -> the states it comes in on the session's ordinary paths."""

OVERLAP_FROM: dict[str, frozenset[SessionState]] = {
    # connect() during an outage (the redial stops at its next check) or while closing
    "dial_started": frozenset({RECONNECTING, CLOSING}),
    # from there on, a dial, a socket's end or a redial can overlap another one
    "opened": _ALL - USUAL_FROM["opened"],
    "close_requested": _ALL - USUAL_FROM["close_requested"],
    "closed": frozenset(),
    "lost": frozenset({IDLE, CONNECTING, RECONNECTING}),
    "redial_started(initial=True)": _ALL - {CONNECTING},
    # IDLE too: disconnect() from a synchronous on_disconnected handler is undone here
    "redial_started(initial=False)": _ALL - {RECONNECTING},
    "gave_up": _ALL - USUAL_FROM["gave_up"],
    # not OPEN: only a new socket makes it OPEN again, and that replaces the one dropped
    "dropped": frozenset({IDLE, CONNECTING, RECONNECTING}),
}
"""Event -> the further states it comes in when the public API overlaps itself."""


class InvalidTransition(WebsocketClientError, RuntimeError):
    """An event came in a state it cannot come in: a bug in the caller.

    Attributes:
        event: The event (a key of :data:`USUAL_FROM`).
        state: The state it came in; it is left unchanged.
    """

    def __init__(self, event: str, state: SessionState):
        """Name the event, the state and the states it may come in.

        Args:
            event: The event.
            state: The current state.
        """
        legal = USUAL_FROM[event] | OVERLAP_FROM[event]
        allowed = ", ".join(s.name for s in SessionState if s in legal)
        super().__init__(f"{event} cannot happen in state {state.name} (only in {allowed})")
        self.event = event
        self.state = state


class ConnectionState:
    """The state machine of one session's connection.

    Each event method raises :class:`InvalidTransition` when the event cannot
    come in the current state (see :data:`USUAL_FROM` and :data:`OVERLAP_FROM`),
    except :meth:`redial_cancelled` and :meth:`connect_returned`, which change
    one state and leave the others alone.
    """

    def __init__(self, state: SessionState = IDLE) -> None:
        """Start in ``state``.

        Args:
            state: The first state: IDLE (nothing dialed yet) but in tests.
        """
        self._state = state

    def __repr__(self) -> str:
        """``ConnectionState(OPEN)``."""
        return f"ConnectionState({self._state.name})"

    # -- questions ----------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current :class:`SessionState`."""
        return self._state

    @property
    def is_open(self) -> bool:
        """Whether the session counts as connected (its socket may have died unreported)."""
        return self._state is OPEN

    @property
    def connecting(self) -> bool:
        """Whether ``connect()`` is dialing, or retrying its first dial."""
        return self._state is CONNECTING

    @property
    def reconnecting(self) -> bool:
        """Whether a lost connection is being redialed (senders hold their data)."""
        return self._state is RECONNECTING

    @property
    def closed_by_us(self) -> bool:
        """Whether we asked to close (CLOSING), so the socket's end is ours, not a loss."""
        return self._state is CLOSING

    def redial_wanted(self, *, initial: bool) -> bool:
        """Whether a redial loop goes on: the state is still the one it started in.

        Args:
            initial: As given to :meth:`redial_started`.

        Returns:
            True while CONNECTING (``initial``) or RECONNECTING (not ``initial``).
        """
        return self._state is (CONNECTING if initial else RECONNECTING)

    # -- events -------------------------------------------------------------

    def dial_started(self) -> None:
        """``connect()`` starts dialing: -> CONNECTING.

        Raises:
            InvalidTransition: If OPEN (``connect()`` returns at once then) or
                already CONNECTING (``connect()`` holds a lock while dialing).
        """
        self._go("dial_started", CONNECTING)

    def opened(self) -> None:
        """A dial, first or redial, succeeded: -> OPEN."""
        self._go("opened", OPEN)

    def close_requested(self) -> None:
        """``disconnect()`` or ``abort()`` closes the socket: -> CLOSING."""
        self._go("close_requested", CLOSING)

    def closed(self) -> None:
        """The socket we asked to close has ended: CLOSING -> IDLE.

        Raises:
            InvalidTransition: If not CLOSING (the end is a loss then: :meth:`lost`).
        """
        self._go("closed", IDLE)

    def lost(self, *, reconnect: bool) -> None:
        """The socket ended without our asking: -> RECONNECTING, or IDLE.

        Args:
            reconnect: Whether the reconnect policy will redial.

        Raises:
            InvalidTransition: If CLOSING (the end is ours then: :meth:`closed`).
        """
        self._go("lost", RECONNECTING if reconnect else IDLE)

    def redial_started(self, *, initial: bool) -> None:
        """A redial loop starts: -> CONNECTING if ``initial``, else RECONNECTING.

        Args:
            initial: True for the retries of a first dial
                (``retry_initial_connect``: senders wait as for a first dial),
                False after a lost connection (senders hold their data).
        """
        self._go(f"redial_started(initial={initial})", CONNECTING if initial else RECONNECTING)

    def gave_up(self) -> None:
        """The reconnect policy gave up redialing: -> IDLE."""
        self._go("gave_up", IDLE)

    def dropped(self) -> None:
        """The socket being closed did not report its end in time and was let go: -> IDLE.

        Raises:
            InvalidTransition: If OPEN.
        """
        self._go("dropped", IDLE)

    def redial_cancelled(self) -> None:
        """``disconnect()`` stops an outage's redial: RECONNECTING -> IDLE.

        In any other state nothing changes: the retries of a first dial
        (CONNECTING) are stopped by cancelling ``connect()``, not here.
        """
        if self._state is RECONNECTING:
            self._state = IDLE

    def connect_returned(self) -> None:
        """``connect()`` returned, raised or was cancelled: CONNECTING -> IDLE.

        Still CONNECTING means no dial succeeded (it failed, or was
        cancelled). In any other state (OPEN, or changed meanwhile) nothing
        changes.
        """
        if self._state is CONNECTING:
            self._state = IDLE

    def _go(self, event: str, to: SessionState) -> None:
        if self._state not in USUAL_FROM[event] and self._state not in OVERLAP_FROM[event]:
            raise InvalidTransition(event, self._state)
        self._state = to
