#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The asyncio loop that runs a Locust process's calls, bridged to gevent.

Locust runs on gevent and monkey-patches the standard library, while the
transport is asyncio. The calls of a Locust process therefore run on one real
OS thread (started with the unpatched ``_thread.start_new_thread``) running an
asyncio loop built on the unpatched selector (epoll), so the loop blocks in
the kernel like any asyncio loop rather than in a gevent hub. Work that asyncio
hands to an executor (name resolution, ``asyncio.to_thread``) runs on real
threads too (patched threads would be greenlets that this thread never runs):
a pool of at most :data:`EXECUTOR_THREADS`, started as needed and reused by
every call, fed by an unpatched queue. Name resolution uses the unpatched
``getaddrinfo``. A user's greenlet submits its call to that loop and waits on
a gevent ``AsyncResult``, set from the loop thread through the hub's
thread-safe callback, so waiting costs nothing and other greenlets keep
running.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import gevent
from gevent import monkey
from gevent.event import AsyncResult

from pipecat_wsclient.caller.call import CallOptions, run_call
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.locust.events import CallFailed

if TYPE_CHECKING:
    from typing import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")

_start_new_thread: Callable[..., int] = monkey.get_original("_thread", "start_new_thread")
_allocate_lock: Callable[[], Any] = monkey.get_original("_thread", "allocate_lock")
_getaddrinfo: Callable[..., Any] = monkey.get_original("socket", "getaddrinfo")
_getnameinfo: Callable[..., Any] = monkey.get_original("socket", "getnameinfo")
_DefaultSelector: Callable[[], Any] = monkey.get_original("selectors", "DefaultSelector")
_SimpleQueue: Callable[[], Any] = monkey.get_original("queue", "SimpleQueue")

EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Most real OS threads the loop runs executor work on (asyncio's default executor's bound)."""


class _RealThreadPool:
    """At most ``size`` real OS threads, started as needed and reused, fed by an unpatched queue.

    ``concurrent.futures.ThreadPoolExecutor`` cannot be used: under gevent its
    threads, locks and queue are greenlet-based. A job is a callable taking no
    arguments that does not raise; the queue and the lock are the unpatched
    ones, so a waiting worker blocks in the kernel.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: Any = _SimpleQueue()
        self._lock = _allocate_lock()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on an idle worker, on a new one (up to ``size``), or when one is free.

        Raises:
            RuntimeError: If the pool has been shut down.
        """
        start = False
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor has been shut down")
            if self._idle:
                self._idle -= 1  # that worker takes this job
            elif self._threads < self._size:
                self._threads += 1
                start = True
            self._jobs.put(job)
        if start:
            _start_new_thread(self._work, ())

    def shutdown(self) -> None:
        """Let the workers finish the jobs queued, then end them (does not wait)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in range(self._threads):
                self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()
            with self._lock:
                self._idle += 1


class _Loop(asyncio.SelectorEventLoop):
    """An asyncio loop that works in a gevent-patched process.

    Executor work runs on a pool of real OS threads (at most
    :data:`EXECUTOR_THREADS`, reused), and name resolution calls the
    unpatched ``getaddrinfo``/``getnameinfo``.
    """

    def __init__(self) -> None:
        selector = _DefaultSelector()
        if type(selector).__module__.startswith("gevent"):
            raise RuntimeError(
                "cannot find the unpatched selector: import pipecat_wsclient.locust "
                "from a locustfile (after Locust has patched the standard library)"
            )
        super().__init__(selector)
        self._pool = _RealThreadPool(EXECUTOR_THREADS)

    def close(self) -> None:
        """Close the loop and end its executor threads."""
        self._pool.shutdown()
        super().close()

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: *_Ts,
    ) -> asyncio.Future[_T]:
        """Run ``func`` on the loop's pool of real OS threads (thread pools included)."""
        if executor is not None and not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            return super().run_in_executor(executor, func, *args)
        future: asyncio.Future[_T] = self.create_future()

        def settle(value: Any, error: BaseException | None) -> None:
            if future.cancelled():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        def work() -> None:
            try:
                value = func(*args)
            except BaseException as e:
                outcome: tuple[Any, BaseException | None] = (None, e)
            else:
                outcome = (value, None)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.call_soon_threadsafe(settle, *outcome)

        self._pool.submit(work)
        return future

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> Any:
        """Resolve with the unpatched ``socket.getaddrinfo`` on a real thread."""
        return await self.run_in_executor(
            None, _getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> Any:
        """Reverse-resolve with the unpatched ``socket.getnameinfo`` on a real thread."""
        return await self.run_in_executor(None, _getnameinfo, sockaddr, flags)


class _LoopThread:
    """One real OS thread per process running the asyncio loop the calls use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._starting: AsyncResult | None = None
        self._exited = _allocate_lock()
        self.calls: set[asyncio.Event] = set()
        """The stop events of the calls going on (used in the loop's thread only)."""
        atexit.register(self.stop)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use (and again in a forked child)."""
        if self._loop is not None and self._pid == os.getpid() and self._loop.is_running():
            return self._loop
        if self._starting is not None and self._pid == os.getpid():
            loop: asyncio.AbstractEventLoop = self._starting.get()
            return loop
        self._pid = os.getpid()
        self._loop = None
        self._exited = _allocate_lock()
        starting = self._starting = AsyncResult()
        hub = gevent.get_hub()
        _start_new_thread(self._main, (hub, starting))
        try:
            loop = starting.get()
        finally:
            self._starting = None
        self._loop = loop
        return loop

    def _main(self, hub: Any, starting: AsyncResult) -> None:
        with self._exited:
            try:
                loop = _Loop()
            except BaseException as e:
                _notify(hub, starting.set_exception, e)
                return
            asyncio.set_event_loop(loop)
            loop.call_soon(_notify, hub, starting.set, loop)
            try:
                loop.run_forever()
            finally:
                try:
                    pending = asyncio.all_tasks(loop)
                    for leftover in pending:
                        leftover.cancel()
                    if pending:
                        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

    def stop(self, timeout: float = 3.0) -> None:
        """End the calls still going and stop the loop (at exit); wait for its thread."""
        loop, self._loop = self._loop, None
        if loop is None or self._pid != os.getpid() or loop.is_closed():
            return

        async def wind_down() -> None:
            for stop in list(self.calls):
                stop.set()  # each call ends as if interrupted, closing its connection
            calls = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if calls:
                await asyncio.wait(calls, timeout=max(0.1, timeout - 1.0))
            asyncio.get_running_loop().stop()

        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(lambda: loop.create_task(wind_down()))
        if self._exited.acquire(True, timeout):
            self._exited.release()


_THREAD = _LoopThread()


def _notify(hub: Any, func: Callable[..., Any], *args: Any) -> None:
    """Run ``func(*args)`` in the hub's thread (from the loop's thread)."""
    with contextlib.suppress(Exception):  # the hub is gone: the process is exiting
        hub.loop.run_callback_threadsafe(func, *args)


def call_in_greenlet(options: CallOptions) -> CallResult:
    """Make one call on this process's asyncio thread; wait for it cooperatively.

    For use from a greenlet (a Locust task). If the greenlet is killed while
    waiting (a Locust user stopped), the call is ended (it closes normally)
    and the kill goes on.

    Args:
        options: What to call and how.

    Returns:
        The call's measurements.

    Raises:
        Exception: Whatever :func:`~pipecat_wsclient.caller.call.run_call` raised
            (e.g. ``ValueError`` for an invalid URI).
    """
    return run_in_greenlet(lambda stop: run_call(options, stop=stop))


def run_in_greenlet(work: Callable[[asyncio.Event], Coroutine[Any, Any, _T]]) -> _T:
    """Run ``work(stop)`` on this process's asyncio thread; wait for it cooperatively.

    ``stop`` is set if the greenlet is killed while waiting (a Locust user
    stopped): ``work`` should then end soon (a call hangs up normally).

    Args:
        work: Makes the coroutine to run, given its stop event.

    Returns:
        What the coroutine returned.

    Raises:
        Exception: Whatever the coroutine raised.
    """
    loop = _THREAD.loop()
    hub = gevent.get_hub()
    done = AsyncResult()
    stop = asyncio.Event()  # bound to the loop on first use, in the loop's thread

    def finished(future: asyncio.Future[_T]) -> None:
        _THREAD.calls.discard(stop)
        if future.cancelled():
            _notify(hub, done.set_exception, CallFailed("error", "the call was cancelled"))
        elif (error := future.exception()) is not None:
            _notify(hub, done.set_exception, error)
        else:
            _notify(hub, done.set, future.result())

    def start() -> None:
        _THREAD.calls.add(stop)
        task_ = loop.create_task(work(stop))
        task_.add_done_callback(finished)

    loop.call_soon_threadsafe(start)
    try:
        result: _T = done.get()
    except BaseException:
        if not done.ready():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                loop.call_soon_threadsafe(stop.set)
        raise
    return result
