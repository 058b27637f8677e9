#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Ctrl-C and SIGTERM: how the commands stop cleanly, and within a bound.

Two parts, used together by the command line (issue 25, item 3):

- :func:`stop_on_signals`: inside a running event loop, SIGINT or SIGTERM
  sets an ``asyncio.Event`` instead of raising: the call hangs up, the
  recording and the report are still written.
- :func:`guard_process`: the command line's process installs it first
  thing. A signal that comes outside a stop block (while Pipecat is
  imported, while a model loads) ends the process at once (exit 130 for
  SIGINT, 143 for SIGTERM), or raises :class:`Interrupted` where the command
  can still say so (:func:`interruptible`); a second signal exits at once.
  With :func:`bound_stops` (``call``, ``test``, ``load``), once a signal
  came, the process exits within :data:`FORCE_EXIT_SECS` whatever it is
  doing: a stop that cannot take effect (a loop that never yields, a thread
  that does not end) cannot keep it running.

The handlers are Python's (``signal.signal``), not the event loop's: they
run in the main thread between two bytecodes, so a signal is seen even
while the loop is blocked; they hand the stop to the loop thread-safely.
:func:`run_stoppable` is ``asyncio.run`` that, after a signal, does not wait for the
loop's worker threads (a transcription, a model download) to finish.
It imports nothing but the standard library: the command line installs
it before it imports Pipecat.

Example::

    guard_process()
    bound_stops()
    stop = asyncio.Event()

    async def main():
        with stop_on_signals(stop):
            await make_the_call(stop)

    run_stoppable(main())
    code = stopped_exit_code()  # 130 after SIGINT, 143 after SIGTERM
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a command."""

FORCE_EXIT_SECS = 3.0
"""Once a signal came, the process exits within this many seconds, done or not."""


def signal_exit_code(signum: int) -> int:
    """The exit code after a signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + signum


class Interrupted(BaseException):
    """A signal came outside a stop block, inside :func:`interruptible`.

    A ``BaseException``, as ``KeyboardInterrupt`` is: no ``except Exception``
    swallows it.

    Attributes:
        signum: The signal's number.
    """

    def __init__(self, signum: int):
        """Initialize it for ``signum``."""
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM."""
        return signal_exit_code(self.signum)


@dataclass
class _State:
    """The process's signal state (signals are process-wide)."""

    guarded: bool = False
    force_after: float | None = None
    catching: int = 0
    """How many :func:`interruptible` blocks are open."""
    received: int | None = None
    """The first signal's number."""
    stops: list[Callable[[], None]] = field(default_factory=list)
    """What the open stop blocks set on a signal."""
    on_forced_exit: list[Callable[[], object]] = field(default_factory=list)
    watchdog: threading.Thread | None = None


_state = _State()


def received() -> int | None:
    """The number of the first SIGINT or SIGTERM this process got (None: none)."""
    return _state.received


def stopped_exit_code() -> int:
    """The exit code of a command stopped by a signal: 130 (SIGINT, or none seen), 143 (SIGTERM)."""
    return signal_exit_code(signal.SIGINT if _state.received is None else _state.received)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def guard_process() -> None:
    """Install the command line's handlers of SIGINT and SIGTERM (once per process).

    After this, a signal outside a stop block exits the process at once
    (or raises :class:`Interrupted` inside :func:`interruptible`), and a
    second signal exits at once. Only for a process that is a command
    (never in a library or a test process): it takes SIGINT and SIGTERM
    over for good. See :func:`bound_stops` for the forced exit.
    """
    if not _in_main_thread():
        return
    _state.guarded = True
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)


def bound_stops(force_after: float | None = FORCE_EXIT_SECS) -> None:
    """Exit the (guarded) process ``force_after`` seconds after a signal, done or not.

    ``call``, ``test`` and ``load`` promise to end within a bound after
    SIGINT or SIGTERM; a clean stop that takes longer (a task that never
    yields, a thread that does not end) is cut short, with one line on
    stderr, and the exit code of the signal.

    Args:
        force_after: Seconds from the first signal to the forced exit; None: no bound.
    """
    _state.force_after = force_after


def on_forced_exit(callback: Callable[[], object]) -> Callable[[], None]:
    """Run ``callback`` before a forced exit (e.g. kill child processes); return its remover."""
    _state.on_forced_exit.append(callback)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _state.on_forced_exit.remove(callback)

    return remove


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, a signal outside a stop block raises :class:`Interrupted`.

    Outside it (while the command line is imported), such a signal exits the
    process at once: there is nothing to clean up yet. Without
    :func:`guard_process` it changes nothing.
    """
    _state.catching += 1
    try:
        yield
    finally:
        _state.catching -= 1


@contextlib.contextmanager
def stop_on_signals(event: asyncio.Event) -> Iterator[None]:
    """Set ``event`` on SIGINT or SIGTERM while the block runs, instead of raising.

    Call it from a coroutine: the event is set on its running loop, from
    the signal handler, thread-safely. Outside the main thread nothing is
    installed and the block relies on cancellation. Without
    :func:`guard_process` the handlers before the block are put back after
    it::

        stop = asyncio.Event()
        with stop_on_signals(stop):
            await run(stop)

    Args:
        event: The event to set.
    """
    loop = asyncio.get_running_loop()

    def stop() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
            loop.call_soon_threadsafe(event.set)

    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    if not _state.guarded:
        for sig in SIGNALS:
            signal.signal(sig, _on_signal)
    _state.stops.append(stop)
    if _state.guarded and _state.received is not None:  # a signal came before: stop at once
        event.set()
    try:
        yield
    finally:
        _state.stops.remove(stop)
        if not _state.guarded:
            for sig, handler in previous.items():
                if handler is not None:  # None: not set from Python, nothing to put back
                    signal.signal(sig, handler)


def _on_signal(signum: int, _frame: object) -> None:
    """The handler of SIGINT and SIGTERM (main thread, between two bytecodes)."""
    first = _state.received is None
    if first:
        _state.received = signum
    if _state.guarded:
        if not first:
            _force_exit(f"{signal.Signals(signum).name} again: exiting now")
        _start_watchdog(signum)
    if _state.stops:
        for stop in list(_state.stops):
            stop()
        return
    if not _state.guarded:
        return  # a stop block's handler after the block ended: nothing to stop
    if _state.catching:
        raise Interrupted(signum)
    _force_exit(None)  # importing: nothing done yet, nothing to clean up


def _start_watchdog(signum: int) -> None:
    if _state.watchdog is not None:
        return
    name = signal.Signals(signum).name

    after = _state.force_after

    def watch() -> None:
        threading.Event().wait(after)
        _force_exit(f"still running {after:g} s after {name}: exiting now")

    _state.watchdog = threading.Thread(target=watch, name="signal-watchdog", daemon=True)
    _state.watchdog.start()


def _force_exit(message: str | None) -> None:
    """Exit now with the first signal's code: no thread, no atexit hook waited for."""
    for callback in list(_state.on_forced_exit):
        with contextlib.suppress(Exception):
            callback()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    if message:
        with contextlib.suppress(OSError):
            os.write(2, f"error: {message}\n".encode())
    os._exit(stopped_exit_code())


def exit_after_signal(code: int) -> None:
    """End the process with ``code`` after a signal, without waiting for worker threads.

    A command stopped by a signal has written its report; a transcription
    or a model download still running in a thread is not waited for (the
    interpreter would join it at exit). Without a signal, does nothing.
    """
    if _state.received is None:
        return
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, except that after a signal the loop's threads are not awaited.

    ``asyncio.run`` ends by waiting for every job of the loop's default
    executor (``asyncio.to_thread``): a Whisper transcription of a long
    answer, a model being downloaded. After SIGINT or SIGTERM nobody wants
    them: the loop is closed without waiting (the threads end on their own,
    or with the process).

    Args:
        main: The coroutine to run.

    Returns:
        What it returned.
    """
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if _state.received is None:
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the loop and let it unwind (as ``asyncio.run`` does)."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
