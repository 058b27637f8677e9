"""Connections that cannot be made end the pipeline, loudly and without leaking secrets.

Every case runs a real Pipecat pipeline around the transport against a real
local endpoint and checks that:

- the pipeline finishes by itself within ``open_timeout + 2`` s;
- exactly one fatal ``ErrorFrame`` reaches the worker, naming host:port and the cause;
- ``on_connection_error`` fires once with the right :class:`FailureKind`;
- the secret in the query string shows up nowhere (frame, event, loguru output).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from loguru import logger
from pipecat.frames.frames import ErrorFrame
from pipecat.utils.errors import ErrorCategory

from harness import make_transport, run_pipeline
from pipecat_wsclient import (
    ConnectionFailure,
    FailureKind,
)
from support.servers import refused_uri, silent_server, status_server
from support.tls import TLSMaterial, make_tls, tls_echo_server

SECRET = "SUPERSECRET123"
# Pipecat's ErrorFrame masks ``token=...`` by itself (redact_secrets), so the
# secret is also given under a name Pipecat does not treat as a credential:
# only our own redaction can hide that one.
QUERY = f"?token={SECRET}&room={SECRET}"


@pytest.fixture(scope="module")
def tls() -> TLSMaterial:
    return make_tls()


@dataclass
class Outcome:
    """What one failing run produced."""

    uri: str
    hostport: str
    total_secs: float  # pipeline start -> pipeline finished by itself
    errors: list[ErrorFrame]
    error_times: list[float]  # seconds after pipeline start
    events: list[ConnectionFailure]
    event_times: list[float]  # seconds after pipeline start
    logs: list[str] = field(default_factory=list)


async def run_failing(uri: str, open_timeout: float, **params) -> Outcome:
    """Run a pipeline against ``uri`` until it ends by itself (or the bound passes)."""
    lines: list[str] = []
    handler_id = logger.add(lines.append, level="TRACE")
    try:
        transport = make_transport(uri, open_timeout=open_timeout, **params)
        events: list[ConnectionFailure] = []
        event_times: list[float] = []
        error_times: list[float] = []
        start = time.monotonic()

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            event_times.append(time.monotonic() - start)
            events.append(error)

        bound = open_timeout + 2.0
        async with run_pipeline(transport) as p:

            @p.worker.event_handler("on_pipeline_error")
            async def on_pipeline_error(worker, frame):
                error_times.append(time.monotonic() - start)

            try:
                await p.wait(bound)
            except TimeoutError:
                pytest.fail(f"pipeline did not end by itself within {bound}s")
            total = time.monotonic() - start
            errors = list(p.errors)
    finally:
        logger.remove(handler_id)
    return Outcome(
        uri=uri,
        hostport=urlsplit(uri).netloc,
        total_secs=total,
        errors=errors,
        error_times=error_times,
        events=events,
        event_times=event_times,
        logs=lines,
    )


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}s" for t in times) or "never"


def check_outcome(
    out: Outcome,
    *,
    kind: FailureKind,
    causes: tuple[str, ...],
    open_timeout: float,
    status_code: int | None = None,
    category: ErrorCategory | None = None,
    label: str = "",
) -> None:
    print(
        f"TIMING {label}: fatal ErrorFrame at {_fmt(out.error_times)},"
        f" event at {_fmt(out.event_times)}, pipeline ended at {out.total_secs:.3f}s"
        f" (bound {open_timeout + 2.0}s)"
    )
    assert out.total_secs <= open_timeout + 2.0

    # Exactly one fatal ErrorFrame, naming host:port and the cause.
    assert len(out.errors) == 1, [e.error for e in out.errors]
    frame = out.errors[0]
    assert frame.fatal is True
    assert out.hostport in frame.error, frame.error
    for cause in causes:
        assert cause in frame.error, frame.error
    if category is not None:
        assert frame.category is category

    # The event fired once, with the right kind.
    assert len(out.events) == 1, out.events
    failure = out.events[0]
    assert isinstance(failure, ConnectionFailure)
    assert failure.kind is kind
    assert failure.status_code == status_code
    assert failure.during_connect is True
    assert out.hostport in failure.uri
    assert out.hostport in str(failure)
    assert failure.cause in str(failure)
    for cause in causes:
        assert cause in str(failure)
    assert frame.exception is failure

    # The secret is nowhere.
    assert SECRET not in frame.error
    assert SECRET not in str(failure)
    assert SECRET not in failure.uri
    assert SECRET not in failure.cause
    logs = "".join(out.logs)
    assert out.logs, "the loguru sink captured nothing"
    assert SECRET not in logs, [line for line in out.logs if SECRET in line]


# The brief's plain ``?token=...`` too: there Pipecat's redaction of the frame
# text also swallows the ": " between URI and cause, which must survive anyway.
@pytest.mark.parametrize("query", [QUERY, f"?token={SECRET}"], ids=["token+room", "token"])
async def test_connection_refused(query: str):
    uri = refused_uri() + query
    out = await run_failing(uri, open_timeout=3.0)
    check_outcome(
        out,
        kind=FailureKind.REFUSED,
        causes=("connection refused",),
        open_timeout=3.0,
        category=ErrorCategory.CONNECTIVITY,
        label="refused",
    )


async def test_dns_failure():
    uri = "ws://nonexistent-host.invalid:8765/ws" + QUERY
    out = await run_failing(uri, open_timeout=3.0)
    check_outcome(
        out,
        kind=FailureKind.DNS,
        causes=("not resolved",),
        open_timeout=3.0,
        category=ErrorCategory.CONNECTIVITY,
        label="dns",
    )


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (401, ErrorCategory.AUTHENTICATION),
        (403, ErrorCategory.AUTHORIZATION),
        (404, ErrorCategory.INVALID_REQUEST),
        (500, ErrorCategory.SERVER),
    ],
)
async def test_http_status_at_handshake(status: int, category: ErrorCategory):
    async with status_server(status) as server:
        out = await run_failing(server.uri + QUERY, open_timeout=3.0)
        assert server.attempts == 1
    check_outcome(
        out,
        kind=FailureKind.HTTP_STATUS,
        causes=(f"HTTP {status}",),
        open_timeout=3.0,
        status_code=status,
        category=category,
        label=f"http {status}",
    )


async def test_no_answer_within_open_timeout():
    async with silent_server() as server:
        out = await run_failing(server.uri + QUERY, open_timeout=0.5)
        assert server.attempts == 1
    check_outcome(
        out,
        kind=FailureKind.TIMEOUT,
        causes=("open_timeout", "0.5"),
        open_timeout=0.5,
        category=ErrorCategory.CONNECTIVITY,
        label="timeout",
    )
    # It waited for open_timeout, not less.
    assert out.event_times[0] >= 0.45


async def test_tls_untrusted_certificate(tls: TLSMaterial):
    async with tls_echo_server(tls.server_context) as server:
        assert server.uri.startswith("wss://")
        out = await run_failing(server.uri + QUERY, open_timeout=3.0)
        assert server.connections == 0
    check_outcome(
        out,
        kind=FailureKind.TLS,
        causes=("certificate",),
        open_timeout=3.0,
        category=ErrorCategory.CONNECTIVITY,
        label="tls",
    )


@pytest.mark.parametrize("uri", ["http://x", "ws://", "not a uri"])
def test_invalid_uri_raises_at_construction(uri: str):
    with pytest.raises(ValueError, match="invalid WebSocket URI"):
        make_transport(uri, open_timeout=3.0)


@pytest.mark.parametrize("uri", ["http://x" + QUERY, "ws://" + QUERY])
def test_invalid_uri_error_does_not_leak_secret(uri: str):
    # websockets' InvalidURI quotes the raw URI in its str(): the ValueError
    # must not pass that on.
    with pytest.raises(ValueError) as exc_info:
        make_transport(uri, open_timeout=3.0)
    assert SECRET not in str(exc_info.value)
