"""The load command: percentiles against a tone server, error rates, thresholds."""

from __future__ import annotations

import json

import pytest

from pipecat_wsclient.caller.result import CallResult
from pipecat_wsclient.load.run import LoadReport, crossed, error_class, parse_threshold, summarize
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer
from support.commands import cli, png_size
from support.servers import refused_uri, status_server


def call(exit_code=0, error=None, connect=5.0, latencies=(300.0,), underruns=0) -> CallResult:
    r = CallResult(uri="ws://x", exit_code=exit_code, error=error, connect_ms=connect)
    r.turns = [{"utterance_end_s": 1.0, "answer_start_s": 1.3, "latency_ms": v} for v in latencies]
    r.underruns = underruns
    return r


def test_summarize_percentiles():
    results = [call(connect=float(i), latencies=(100.0 * i,)) for i in range(1, 101)]
    metrics = summarize(results)
    assert metrics["connect_ms"]["p50"] == pytest.approx(50.5)
    assert metrics["connect_ms"]["p99"] == pytest.approx(99.01)
    assert metrics["connect_ms"]["max"] == 100
    assert metrics["response_ms"]["p95"] == pytest.approx(9505)
    assert metrics["response_ms"]["count"] == 100


@pytest.mark.parametrize(
    ("exit_code", "error", "cls"),
    [
        (0, None, None),
        (3, "cannot connect to ws://h - connection refused", "refused"),
        (4, "cannot connect to ws://h - HTTP 401 Unauthorized", "http_401"),
        (5, "TLS", "tls"),
        (6, "no answer within open_timeout=5s", "timeout"),
        (7, "connection to ws://h lost - server closed", "dropped"),
        (130, "interrupted", "interrupted"),
    ],
)
def test_error_classes(exit_code, error, cls):
    assert error_class(call(exit_code, error)) == cls


def test_thresholds():
    report = LoadReport(calls=100, failed=2, metrics=summarize([call(latencies=(1300.0,))]))
    assert parse_threshold("p95_response_ms>1200") == ("p95_response_ms", ">", 1200.0)
    assert crossed(report, ["p95_response_ms>1200"]) == [
        "p95_response_ms = 1300 (p95_response_ms>1200)"
    ]
    assert crossed(report, ["error_rate>0.01"]) == ["error_rate = 0.02 (error_rate>0.01)"]
    assert crossed(report, ["error_rate>0.05", "p50_connect_ms>10"]) == []
    with pytest.raises(ValueError):
        parse_threshold("p95 response > lots")


@pytest.mark.slow
async def test_load_against_tone_server_reports_its_latency(tmp_path):
    png = tmp_path / "load.png"
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        code, out, err = await cli(
            "load",
            server.uri,
            "--calls",
            "6",
            "--concurrency",
            "3",
            "--ramp",
            "6",
            "--turns",
            "1",
            "--think",
            "1",
            "--json",
            "--report",
            str(png),
            "--fail-if",
            "p95_response_ms>1200",
            timeout=120,
        )
    assert code == 0, err
    report = json.loads(out)
    assert report["calls"] == 6 and report["completed"] == 6 and report["error_rate"] == 0
    response = report["metrics"]["response_ms"]
    assert response["count"] == 12  # the bundled clip holds two questions
    assert abs(response["p50"] - 300) < 60
    assert report["metrics"]["connect_ms"]["p99"] < 1000
    assert report["metrics"]["underruns"]["max"] == 0
    assert png_size(png) == (1200, 450)


@pytest.mark.slow
async def test_injected_refusals_show_as_error_rate_and_gate_the_exit_code():
    async with VoiceServer(ServeOptions(port=0, mode="tone")) as server:
        uris = [server.uri, server.uri, server.uri, refused_uri()]
        code, out, _ = await cli(
            "load",
            *uris,
            "--calls",
            "8",
            "--concurrency",
            "4",
            "--ramp",
            "8",
            "--think",
            "0.5",
            "--json",
            "--fail-if",
            "error_rate>0.01",
            timeout=120,
        )
    report = json.loads(out)
    assert report["errors"] == {"refused": 2}
    assert report["error_rate"] == 0.25
    assert code == 1
    assert report["failed_thresholds"] == ["error_rate = 0.25 (error_rate>0.01)"]


async def test_http_errors_are_classified():
    async with status_server(403) as server:
        code, out, _ = await cli("load", server.uri, "--calls", "2", "--json")
    report = json.loads(out)
    assert report["errors"] == {"http_403": 2}
    assert code == 1  # calls failed, and --max-error-rate is 0 by default


async def test_bad_threshold_is_a_usage_error():
    code, _, err = await cli("load", "ws://127.0.0.1:1/ws", "--fail-if", "nonsense")
    assert code == 2 and "fail-if" in err


@pytest.mark.slow
async def test_an_echo_is_counted_as_overlap_never_as_a_response():
    """``serve``'s echo talks back while we speak: an overlap per question, no answer."""
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:
        code, out, err = await cli(
            "load", server.uri, "--calls", "2", "--concurrency", "2", "--turns", "1",
            "--json", timeout=120,
        )  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["overlap_ms"]["count"] == 4, metrics  # two questions per call
    assert metrics["response_ms"]["count"] == 0, metrics
