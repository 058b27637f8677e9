#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The Locust user: one voice call per task, reported as Locust requests."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import gevent
from locust import User, constant, task

from pipecat_wsclient.caller.builder import check_uri
from pipecat_wsclient.caller.call import CallOptions
from pipecat_wsclient.caller.outcome import EXIT_OK
from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.caller.webhook import check_webhook, is_webhook
from pipecat_wsclient.load.run import LoadOptions, LoadRun
from pipecat_wsclient.locust.events import (
    REQUEST_TYPE,
    CallFailed,
    call_events,
    scenario_events,
)
from pipecat_wsclient.locust.loop import call_in_greenlet, run_in_greenlet
from pipecat_wsclient.protocols.registry import get_protocol

if TYPE_CHECKING:
    from pipecat_wsclient.scenario.model import Scenario


class VoiceCallUser(User):
    """A Locust user that makes voice calls, one per task, back to back.

    Set the class attributes in a subclass in your locustfile. The endpoint is
    Locust's ``--host`` (or ``host``) if given, else :attr:`uri`.

    Attributes:
        uri: The WebSocket endpoint (``ws://`` or ``wss://``), or with a
            carrier's ``protocol`` the bot's ``http(s)://`` webhook: each
            call asks it for the stream, as the carrier does, with fresh ids.
        protocol: Wire protocol: a name of the CLI's registry
            (:data:`~pipecat_wsclient.protocols.registry.PROTOCOLS`): ``pipecat``, ``raw``,
            ``twilio``, ``telnyx``, ``plivo``, ``exotel``, ``vonage``.
        clips: WAV files played in turn, one per turn (bundled question if empty).
        turns: Turns per call (the clip is played this many times).
        think: Seconds of silence after each clip, in which the bot answers.
        headers: Extra handshake headers.
        sample_rate: Pipeline sample rate; None: the carrier's own, else 16 kHz.
        open_timeout: Seconds allowed to connect.
        cafile: CA bundle to verify a ``wss://`` server with.
        insecure: Skip certificate verification.
        failure_pause: Seconds to wait after a call that failed to connect,
            so that a down endpoint is not dialled in a tight loop.
        scenario: A scenario file (YAML, as ``pipecat-wsclient test`` runs):
            each call plays it instead of clips and turns, each turn is a
            Locust request (``turn N: label``, failed with the expectation
            that failed). Needs the ``test`` extra.
        log_level: Level of Pipecat's and this package's (loguru) log output
            in Locust's processes. ``CRITICAL`` by default, as the CLI: failures
            are reported as Locust failures; ``None`` leaves logging as it is.
        auth_token: The carrier account's auth token, to sign a webhook's
            request and the stream's upgrade as the carrier does (Twilio,
            Plivo, Vonage); None: the carrier's variable (``$TWILIO_AUTH_TOKEN``...).
    """

    abstract = True
    wait_time = constant(0)

    uri: ClassVar[str | None] = None
    protocol: ClassVar[str] = "pipecat"
    clips: ClassVar[Sequence[str | Path]] = ()
    turns: ClassVar[int] = 1
    think: ClassVar[float] = 2.0
    headers: ClassVar[dict[str, str]] = {}
    sample_rate: ClassVar[int | None] = None
    open_timeout: ClassVar[float] = 5.0
    cafile: ClassVar[str | Path | None] = None
    insecure: ClassVar[bool] = False
    failure_pause: ClassVar[float] = 1.0
    scenario: ClassVar[str | Path | None] = None
    log_level: ClassVar[str | None] = "CRITICAL"
    auth_token: ClassVar[str | None] = None

    _runs: ClassVar[dict[tuple[type, str], tuple[LoadRun, itertools.count]]] = {}
    _scenarios: ClassVar[dict[tuple[type, str], Scenario]] = {}
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
        """Check the settings before the first call (a ValueError names the mistake)."""
        try:
            get_protocol(self.protocol)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}: {e}") from None
        if self.scenario is not None:
            scenario = self._scenario()
            uri = self.host or self.uri or scenario.uri
            protocol = scenario.protocol if self.protocol == "pipecat" else self.protocol
        else:
            uri, protocol = self.endpoint, self.protocol
        try:
            if uri:
                check_uri(uri, protocol)
                if is_webhook(uri):
                    check_webhook(uri, protocol, self.auth_token)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}: {e}") from None
        if self.scenario is None:
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
        if self.scenario is not None:
            self._call_scenario()
            return
        options = self.call_options()
        started = time.perf_counter()
        try:
            result = call_in_greenlet(options)
        except Exception as e:
            self._call_raised(started, e)
            return
        self.report(result)
        if result.connect_ms is None and result.exit_code != EXIT_OK:
            gevent.sleep(self.failure_pause)

    def _call_raised(self, started: float, error: Exception) -> None:
        """Report a call that raised as a failed ``call`` request, then pause."""
        elapsed = (time.perf_counter() - started) * 1e3
        failure = CallFailed("error", f"{type(error).__name__}: {error}")
        self.fire("call", elapsed, exception=failure)
        gevent.sleep(self.failure_pause)

    def report(self, result: CallResult) -> None:
        """Fire the call's Locust events (override to add your own)."""
        for event in call_events(result):
            self.fire(event.name, event.ms, length=event.length, exception=event.exception)

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

    def _scenario(self) -> Scenario:
        """The scenario file, read once per class (a ScenarioError names the mistake)."""
        from pipecat_wsclient.scenario.model import ScenarioError, load_scenarios

        assert self.scenario is not None
        key = (type(self), str(self.scenario))
        loaded = VoiceCallUser._scenarios.get(key)
        if loaded is None:
            found = load_scenarios(Path(self.scenario))  # a pipecat.evals file too
            if len(found) != 1:
                names = ", ".join(s.name for s in found)
                raise ScenarioError(f"{self.scenario}: holds {len(found)} scenarios ({names})")
            loaded = VoiceCallUser._scenarios[key] = found[0]
        return loaded

    def _call_scenario(self) -> None:
        from pipecat_wsclient.scenario.run import RunOptions, run_scenario

        scenario = self._scenario()
        options = RunOptions(
            uri=self.host or self.uri or None,
            protocol=None if self.protocol == "pipecat" else self.protocol,
            headers=dict(self.headers),
            transcripts=False,
            cafile=None if self.cafile is None else Path(self.cafile),
            insecure=self.insecure,
            auth_token=self.auth_token,
        )
        started = time.perf_counter()
        try:
            result = run_in_greenlet(lambda stop: run_scenario(scenario, options, stop=stop))
        except Exception as e:
            self._call_raised(started, e)
            return
        for event in scenario_events(result):
            self.fire(event.name, event.ms, length=event.length, exception=event.exception)
        if result.connect_ms is None:
            gevent.sleep(self.failure_pause)

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
                    auth_token=self.auth_token,
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
