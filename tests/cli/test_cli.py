"""The command line, run for real in a subprocess against real servers."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from pipecat_wsclient.audio.wav import pcm_to_float, read_wav, write_wav
from pipecat_wsclient.caller.call import bundled_clip
from pipecat_wsclient.caller.plot import PLOT_SIZE_PX
from pipecat_wsclient.serve.server import ServeOptions, VoiceServer
from support.commands import cli, png_size
from support.processes import pipecat_echo_server
from support.servers import refused_uri, silent_server, status_server
from support.tls import make_tls, tls_echo_server

RATE = 16000


def stereo(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        rate = w.getframerate()
        samples = pcm_to_float(w.readframes(w.getnframes())).reshape(-1, 2)
    return samples[:, 0], samples[:, 1], rate


def envelope(samples: np.ndarray, rate: int, window: float = 0.01) -> np.ndarray:
    n = int(rate * window)
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def best_correlation(
    a: np.ndarray, b: np.ndarray, rate: int, max_lag: float
) -> tuple[float, float]:
    """Best normalized correlation of the 10 ms loudness envelopes, b lagging a by 0..max_lag.

    Envelopes, not samples: the heard track is placed at arrival times, which
    shift each chunk by a few samples.
    """
    ea, eb = envelope(a, rate), envelope(b, rate)
    ea, eb = ea - ea.mean(), eb - eb.mean()
    best, best_lag = -1.0, 0
    for lag in range(int(max_lag / 0.01) + 1):
        x, y = ea[: len(ea) - lag], eb[lag:]
        n = min(len(x), len(y))
        denom = np.linalg.norm(x[:n]) * np.linalg.norm(y[:n])
        c = float(np.dot(x[:n], y[:n]) / denom) if denom else 0.0
        if c > best:
            best, best_lag = c, lag
    return best, best_lag * 0.01


@pytest.mark.slow
async def test_demo_writes_summary_wav_and_png(tmp_path):
    code, out, err = await cli("demo", "--out-dir", str(tmp_path), timeout=30)
    assert code == 0, err
    assert "response latency" in out and "completed" in out
    left, right, rate = stereo(tmp_path / "demo-call.wav")
    clip_secs = len(read_wav(bundled_clip(), RATE)) / (2 * RATE)
    assert rate == RATE
    # The line is never silent by omission: the clip, then 2 s of listening
    # on a line that still sends silence (the recording holds both).
    assert clip_secs + 1.5 <= len(left) / rate <= clip_secs + 2.0 + 1.0
    assert np.sqrt(np.mean(left[: int(clip_secs * rate)] ** 2)) > 0.01  # the clip is in there
    assert np.sqrt(np.mean(right**2)) > 0.01  # the answers are in there
    assert png_size(tmp_path / "demo-call.png") == PLOT_SIZE_PX


@pytest.mark.slow
async def test_demo_json_report():
    code, out, _ = await cli("demo", "--out-dir", "/tmp/pwc-demo-json", "--json", timeout=30)
    assert code == 0
    report = json.loads(out)
    assert len(report["turns"]) == 2
    assert abs(report["latency_p50_ms"] - 300) < 60


@pytest.mark.slow
async def test_latency_against_tone_server_matches_its_configured_delay():
    async with VoiceServer(ServeOptions(port=0, mode="tone", latency=0.3)) as server:
        code, out, err = await cli("call", server.uri, "--json")
    assert code == 0, err
    report = json.loads(out)
    latencies = [t["latency_ms"] for t in report["turns"]]
    assert len(latencies) == 2 and all(lat is not None for lat in latencies)
    for lat in latencies:
        assert abs(lat - 300) < 60
    assert abs(report["latency_p50_ms"] - 300) < 60
    assert report["exit_code"] == 0 and report["error"] is None


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["pipecat", "raw"])
async def test_echo_recording_correlates_with_what_was_sent(tmp_path, protocol):
    record = tmp_path / "call.wav"
    async with VoiceServer(
        ServeOptions(port=0, mode="echo", delay=0.25, protocol=protocol)
    ) as server:
        code, _, err = await cli(
            "call", server.uri, "--protocol", protocol, "--record", str(record), "--listen", "1"
        )
    assert code == 0, err
    left, right, rate = stereo(record)
    corr, lag = best_correlation(left, right, rate, 0.6)
    assert corr > 0.9
    assert 0.2 <= lag <= 0.35  # the server's 0.25 s delay


@pytest.mark.slow
async def test_call_through_pipecat_server_transport(tmp_path):
    record = tmp_path / "call.wav"
    with pipecat_echo_server() as uri:
        code, out, err = await cli("call", uri, "--record", str(record), "--json")
    assert code == 0, err
    left, right, rate = stereo(record)
    corr, _ = best_correlation(left, right, rate, 0.3)
    assert corr > 0.9
    assert json.loads(out)["heard_secs"] > 5


@pytest.mark.slow
async def test_play_resamples_any_wav(tmp_path):
    src = tmp_path / "in.wav"
    t = np.arange(int(1.0 * 44100)) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 300 * t)
    interleaved = np.stack([tone, tone], axis=1).reshape(-1)
    write_wav(src, (interleaved * 32767).astype("<i2").tobytes(), 44100, channels=2)
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:
        code, out, err = await cli(
            "call", server.uri, "--play", str(src), "--listen", "0", "--json"
        )
    assert code == 0, err
    # The clip, and the line's silence until it has gone out (within the mic's lead).
    assert 1.0 <= json.loads(out)["sent_secs"] < 1.0 + 0.3


@pytest.mark.slow
async def test_record_mode_server_writes_what_we_played(tmp_path):
    target = tmp_path / "received.wav"
    async with VoiceServer(ServeOptions(port=0, mode="record", record_path=str(target))) as server:
        code, _, err = await cli("call", server.uri, "--listen", "0.5")
        await asyncio.sleep(0.5)
    # A server that never answers: the call heard nothing (exit 8, saying what to check).
    assert code == 8, err
    assert "heard nothing from the bot" in err and "--protocol" in err
    clip = read_wav(bundled_clip(), RATE)
    with wave.open(str(target)) as w:
        got = w.readframes(w.getnframes())
    # The line's silence, the clip to the byte, then silence again.
    at = got.find(clip[:6400])
    assert at >= 0 and not any(got[:at])
    assert got[at : at + len(clip)] == clip
    assert not any(got[at + len(clip) :])


async def test_exit_code_refused():
    code, _, err = await cli("call", refused_uri())
    assert code == 3
    assert "refused" in err


@pytest.mark.parametrize("status", [401, 500])
async def test_exit_code_http_status(status):
    async with status_server(status) as server:
        code, out, err = await cli("call", server.uri + "?token=SECRET", "--json")
    assert code == 4
    assert f"HTTP {status}" in json.loads(out)["error"]
    assert "SECRET" not in out + err


@pytest.mark.slow
async def test_exit_code_tls():
    tls = make_tls()
    async with tls_echo_server(tls.server_context) as server:
        code, _, err = await cli("call", server.uri)
        assert code == 5
        assert "certificate" in err
        code, _, err = await cli("call", server.uri, "--cafile", str(tls.ca_file), "--listen", "0")
        assert code == 0, err
        code, _, err = await cli("call", server.uri, "--insecure", "--listen", "0")
        assert code == 0 and "warning" in err.lower()


@pytest.mark.slow
async def test_exit_code_timeout():
    async with silent_server() as server:
        code, _, err = await cli("call", server.uri, "--open-timeout", "0.5")
    assert code == 6
    assert "open_timeout" in err


@pytest.mark.parametrize(
    "args",
    [
        ["call", "http://not-ws"],
        ["call", "ws://127.0.0.1:1", "--header", "no-colon"],
        ["call", "ws://127.0.0.1:1", "--protocol", "nope"],
        ["call", "ws://127.0.0.1:1", "--play", "/does/not/exist.wav"],
    ],
)
async def test_usage_errors_exit_2(args):
    code, _, err = await cli(*args)
    assert code == 2
    assert "error" in err.lower()


@pytest.mark.slow
async def test_ctrl_c_ends_call_cleanly_and_writes_recording(tmp_path):
    record = tmp_path / "call.wav"
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:

        async def one_second_into_the_call():
            while server.received_bytes == 0:
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)

        code, _, err = await cli(
            "call", server.uri, "--record", str(record), interrupt_when=one_second_into_the_call
        )
    assert code == 130, err
    left, _, rate = stereo(record)
    assert 0.8 <= len(left) / rate <= 2.0  # interrupted ~1 s in, of a 6 s clip
    assert "Traceback" not in err


@pytest.mark.slow
async def test_headers_are_sent():
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:
        code, _, err = await cli(
            "call", server.uri, "--header", "X-Test: yes", "--listen", "0", "--duration", "0.5"
        )
    assert code == 0, err


@pytest.mark.slow
@pytest.mark.parametrize("command", [[], ["call"], ["serve"], ["demo"]])
async def test_help(command):
    code, out, _ = await cli(*command, "--help")
    assert code == 0
    assert "Usage" in out
