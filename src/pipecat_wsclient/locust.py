#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Locust integration: voice calls as Locust users, reported as Locust requests.

Subclass :class:`VoiceCallUser` in a locustfile and Locust does the rest:
ramping, percentiles, the web UI, CSV files and master/worker distribution::

    from pipecat_wsclient.locust import VoiceCallUser

    class Caller(VoiceCallUser):
        uri = "ws://127.0.0.1:8765/ws"  # or: locust --host ws://...
        turns = 2
        think = 1.5

Each task makes one real call with this package's transport
(:func:`~pipecat_wsclient.cli.call.run_call`, playing the same script of
turns as the ``load`` command) and fires Locust ``request`` events of type
``WS``:

* ``connect``: time to open the WebSocket; a failure (refused, HTTP status,
  TLS, timeout...) is a failed ``connect`` with the error class and the
  one-line reason, e.g. ``CallFailed('http_401: ...')``.
* ``first_answer``: from the first audio sent to the first answer audio heard.
* ``response``: one per turn, from the end of the caller's utterance to the
  start of the answer; a turn left unanswered in a completed call is a failure.
* ``call``: the whole call; a call that connected but did not complete
  (connection lost, an error) is a failed ``call``.

All of a call's events are fired when the call ends.

Locust runs on gevent and monkey-patches the standard library, while the
transport is asyncio. The calls of a Locust process therefore run on one real
OS thread (started with the unpatched ``_thread.start_new_thread``) running an
asyncio loop built on the unpatched selector (epoll), so the loop blocks in
the kernel like any asyncio loop rather than in a gevent hub. Work that asyncio
hands to an executor (name resolution, ``asyncio.to_thread``) runs on real
threads too (patched threads would be greenlets that this thread never runs),
and name resolution uses the unpatched ``getaddrinfo``. A user's greenlet
submits its call to that loop and waits on a gevent ``AsyncResult``, set from
the loop thread through the hub's thread-safe callback, so waiting costs
nothing and other greenlets keep running.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

try:
    import gevent
    from gevent import monkey
    from gevent.event import AsyncResult
    from locust import User, constant, task
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pipecat_wsclient.locust needs Locust: pip install 'pipecat-wsclient[locust]'"
    ) from e

from pipecat_wsclient.cli.call import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROTOCOLS,
    CallOptions,
    CallResult,
    run_call,
)
from pipecat_wsclient.cli.load import LoadOptions, LoadRun, error_class

if TYPE_CHECKING:
    from typing import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")

__all__ = ["CallFailed", "VoiceCallUser", "call_in_greenlet"]

REQUEST_TYPE = "WS"
"""The ``request_type`` of every event fired."""

_start_new_thread: Callable[..., int] = monkey.get_original("_thread", "start_new_thread")
_allocate_lock: Callable[[], Any] = monkey.get_original("_thread", "allocate_lock")
_getaddrinfo: Callable[..., Any] = monkey.get_original("socket", "getaddrinfo")
_getnameinfo: Callable[..., Any] = monkey.get_original("socket", "getnameinfo")
_DefaultSelector: Callable[[], Any] = monkey.get_original("selectors", "DefaultSelector")


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


class _Loop(asyncio.SelectorEventLoop):
    """An asyncio loop that works in a gevent-patched process.

    Executor work runs on real OS threads, and name resolution calls the
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

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: Unpack[_Ts],
    ) -> asyncio.Future[_T]:
        """Run ``func`` on a new real OS thread (thread pools included)."""
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
                self.call_soon_threadsafe(settle, None, e)
            else:
                self.call_soon_threadsafe(settle, value, None)

        _start_new_thread(work, ())
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
        Exception: Whatever :func:`~pipecat_wsclient.cli.call.run_call` raised
            (e.g. ``ValueError`` for an invalid URI).
    """
    loop = _THREAD.loop()
    hub = gevent.get_hub()
    done = AsyncResult()
    stop = asyncio.Event()  # bound to the loop on first use, in the loop's thread

    def finished(future: asyncio.Future[CallResult]) -> None:
        _THREAD.calls.discard(stop)
        if future.cancelled():
            _notify(hub, done.set_exception, CallFailed("error", "the call was cancelled"))
        elif (error := future.exception()) is not None:
            _notify(hub, done.set_exception, error)
        else:
            _notify(hub, done.set, future.result())

    def start() -> None:
        _THREAD.calls.add(stop)
        task_ = loop.create_task(run_call(options, stop=stop))
        task_.add_done_callback(finished)

    loop.call_soon_threadsafe(start)
    try:
        result: CallResult = done.get()
    except BaseException:
        if not done.ready():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                loop.call_soon_threadsafe(stop.set)
        raise
    return result


class VoiceCallUser(User):
    """A Locust user that makes voice calls, one per task, back to back.

    Set the class attributes in a subclass in your locustfile. The endpoint is
    Locust's ``--host`` (or ``host``) if given, else :attr:`uri`.

    Attributes:
        uri: The WebSocket endpoint (``ws://`` or ``wss://``).
        protocol: Wire protocol: ``pipecat``, ``raw``, ``exotel``, ``vonage``.
        clips: WAV files played in turn, one per turn (bundled question if empty).
        turns: Turns per call (the clip is played this many times).
        think: Seconds of silence after each clip, in which the bot answers.
        headers: Extra handshake headers.
        sample_rate: Pipeline sample rate.
        open_timeout: Seconds allowed to connect.
        cafile: CA bundle to verify a ``wss://`` server with.
        insecure: Skip certificate verification.
        failure_pause: Seconds to wait after a call that failed to connect,
            so that a down endpoint is not dialled in a tight loop.
        log_level: Level of Pipecat's and this package's (loguru) log output
            in Locust's processes. ``CRITICAL`` by default, as the CLI: failures
            are reported as Locust failures; ``None`` leaves logging as it is.
    """

    abstract = True
    wait_time = constant(0)

    uri: ClassVar[str | None] = None
    protocol: ClassVar[str] = "pipecat"
    clips: ClassVar[Sequence[str | Path]] = ()
    turns: ClassVar[int] = 1
    think: ClassVar[float] = 2.0
    headers: ClassVar[dict[str, str]] = {}
    sample_rate: ClassVar[int] = 16000
    open_timeout: ClassVar[float] = 5.0
    cafile: ClassVar[str | Path | None] = None
    insecure: ClassVar[bool] = False
    failure_pause: ClassVar[float] = 1.0
    log_level: ClassVar[str | None] = "CRITICAL"

    _runs: ClassVar[dict[tuple[type, str], tuple[LoadRun, itertools.count]]] = {}
    _logging_set: ClassVar[bool] = False

    @property
    def endpoint(self) -> str:
        """Where calls go: Locust's host if set, else :attr:`uri`."""
        endpoint = self.host or self.uri
        if not endpoint:
            raise ValueError(
                f"{type(self).__name__}: set uri = 'ws://...' or pass --host ws://... to locust"
            )
        return endpoint

    def on_start(self) -> None:
        """Check the settings before the first call."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"{type(self).__name__}: unknown protocol {self.protocol!r} "
                f"(choose from {', '.join(PROTOCOLS)})"
            )
        self._script_source()
        self._set_logging()

    def call_options(self) -> CallOptions:
        """The next call's options: the ``load`` command's script of turns."""
        run, counter = self._script_source()
        options = run.call_options(next(counter))
        options.insecure = self.insecure
        options.cafile = None if self.cafile is None else Path(self.cafile)
        return options

    @task
    def call(self) -> None:
        """Make one call and report it to Locust."""
        options = self.call_options()
        started = time.perf_counter()
        try:
            result = call_in_greenlet(options)
        except Exception as e:
            elapsed = (time.perf_counter() - started) * 1e3
            self.fire("call", elapsed, exception=CallFailed("error", f"{type(e).__name__}: {e}"))
            gevent.sleep(self.failure_pause)
            return
        self.report(result)
        if result.connect_ms is None and result.exit_code != EXIT_OK:
            gevent.sleep(self.failure_pause)

    def report(self, result: CallResult) -> None:
        """Fire the call's Locust events (override to add your own)."""
        if result.exit_code == EXIT_INTERRUPTED:
            return
        kind = error_class(result)
        reason = (result.error or "").replace("\n", " ")
        if result.connect_ms is None:
            if kind == "dropped":  # a failed handshake or an early close, not a lost call
                kind = "handshake" if result.exit_code == 4 else "connect"
            self.fire(
                "connect",
                result.duration_secs * 1e3,
                exception=CallFailed(kind or "error", reason or "did not connect"),
            )
            return
        self.fire("connect", result.connect_ms)
        completed = result.exit_code == EXIT_OK
        if result.first_answer_ms is not None:
            self.fire("first_answer", result.first_answer_ms)
        elif completed:
            self.fire("first_answer", 0.0, exception=CallFailed("no_answer", "no answer audio"))
        for n, turn in enumerate(result.turns, 1):
            latency = turn["latency_ms"]
            if latency is not None:
                self.fire("response", latency)
            elif completed:
                self.fire(
                    "response",
                    0.0,
                    exception=CallFailed("no_answer", f"turn {n} was not answered"),
                )
        if completed:
            self.fire("call", result.duration_secs * 1e3, length=result.bytes_in)
        else:
            self.fire(
                "call",
                result.duration_secs * 1e3,
                length=result.bytes_in,
                exception=CallFailed(kind or "dropped", reason or "the call ended early"),
            )

    def fire(
        self, name: str, ms: float, *, length: int = 0, exception: Exception | None = None
    ) -> None:
        """Fire one Locust ``request`` event of type ``WS``."""
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exception,
            context=self.context(),
        )

    def _script_source(self) -> tuple[LoadRun, itertools.count]:
        """The ``LoadRun`` that builds this class's scripts (clips read once)."""
        key = (type(self), self.endpoint)
        source = VoiceCallUser._runs.get(key)
        if source is None:
            run = LoadRun(
                LoadOptions(
                    uris=[self.endpoint],
                    protocol=self.protocol,
                    clips=[Path(c) for c in self.clips],
                    turns=self.turns,
                    think=self.think,
                    headers=dict(self.headers),
                    sample_rate=self.sample_rate,
                    open_timeout=self.open_timeout,
                )
            )
            source = VoiceCallUser._runs[key] = (run, itertools.count())
        return source

    def _set_logging(self) -> None:
        if self.log_level is None or VoiceCallUser._logging_set:
            return
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level=self.log_level)
        VoiceCallUser._logging_set = True
