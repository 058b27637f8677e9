"""The local test voice server: echo, tone answers on time, recording, clean shutdown."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, TextFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from websockets.asyncio.client import ClientConnection, connect

from pipecat_wsclient.audio.wav import float_to_pcm, pcm_to_float
from pipecat_wsclient.serve.server import MAX_TIMINGS, ServeOptions, VoiceServer, make_tone

RATE = 16000
CHUNK = 0.02
CHUNK_BYTES = 2 * int(RATE * CHUNK)

serializer = ProtobufFrameSerializer()


def sine(secs: float, hz: float, amplitude: float = 0.5) -> bytes:
    t = np.arange(int(secs * RATE)) / RATE
    return float_to_pcm(amplitude * np.sin(2 * np.pi * hz * t))


def silence(secs: float) -> bytes:
    return b"\x00\x00" * int(secs * RATE)


def chunks(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]


async def encode(pcm: bytes, protocol: str, rate: int = RATE) -> bytes:
    if protocol == "raw":
        return pcm
    data = await serializer.serialize(OutputAudioRawFrame(pcm, rate, 1))
    assert isinstance(data, bytes)
    return data


async def decode(message: bytes | str, protocol: str) -> bytes:
    assert isinstance(message, bytes)
    if protocol == "raw":
        return message
    frame = await serializer.deserialize(message)
    assert isinstance(frame, InputAudioRawFrame)
    assert frame.sample_rate == RATE
    assert frame.num_channels == 1
    return frame.audio


async def send_paced(ws: ClientConnection, pcm: bytes, protocol: str) -> float:
    """Send ``pcm`` in 20 ms chunks on an absolute real-time schedule; return the start time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, chunk in enumerate(chunks(pcm)):
        delay = start + i * CHUNK - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(await encode(chunk, protocol))
    return start


class Listener:
    """Collect (arrival time, PCM) of every audio message on a connection."""

    def __init__(self, ws: ClientConnection, protocol: str):
        self.ws = ws
        self.protocol = protocol
        self.received: list[tuple[float, bytes]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async for message in self.ws:
            t = loop.time()
            self.received.append((t, await decode(message, self.protocol)))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def pcm(self) -> bytes:
        return b"".join(pcm for _, pcm in self.received)


def server(**kwargs) -> VoiceServer:
    return VoiceServer(ServeOptions(port=0, **kwargs))


def test_timings_kept_are_bounded():
    """A long load run against one server does not grow its timing lists without bound."""
    timings: list[float] = []
    for i in range(3 * MAX_TIMINGS):
        VoiceServer.keep_timing(timings, float(i))
    assert len(timings) == MAX_TIMINGS
    assert timings[0] == 2 * MAX_TIMINGS and timings[-1] == 3 * MAX_TIMINGS - 1


def test_options_are_checked():
    with pytest.raises(ValueError, match="mode"):
        ServeOptions(mode="sing")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="protocol"):
        ServeOptions(protocol="json")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        ServeOptions(delay=-1)
    assert ServeOptions().record_file == Path("received.wav")


@pytest.mark.parametrize("protocol", ["pipecat", "raw"])
async def test_echo_returns_the_same_bytes(protocol):
    messages = [await encode(sine(0.02, 200 + 50 * i), protocol) for i in range(10)]
    async with server(mode="echo", protocol=protocol) as srv:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/ws", srv.uri)
        assert srv.port != 0
        async with connect(srv.uri, compression=None) as ws:
            for m in messages:
                await ws.send(m)
            back = [await asyncio.wait_for(ws.recv(), 2.0) for _ in messages]
        assert back == messages
        assert srv.connections == 1
        assert srv.received_bytes == sum(len(m) for m in messages)


async def test_echo_delay_holds_each_message():
    loop = asyncio.get_running_loop()
    async with (
        server(mode="echo", protocol="raw", delay=0.3) as srv,
        connect(srv.uri + "/any/path", compression=None) as ws,
    ):
        sent: list[float] = []
        for i in range(5):
            sent.append(loop.time())
            await ws.send(bytes([i]) * 640)
            await asyncio.sleep(0.05)
        trips = []
        for i in range(5):
            message = await asyncio.wait_for(ws.recv(), 2.0)
            assert message == bytes([i]) * 640  # in order
            trips.append(loop.time() - sent[i])
    print("TIMING echo delay 0.3: round trips " + ", ".join(f"{t:.3f}" for t in trips))
    assert all(0.3 <= t <= 0.5 for t in trips), trips


@pytest.mark.parametrize("protocol", ["pipecat", "raw"])
async def test_record_writes_what_was_received(protocol, tmp_path, capsys):
    path = tmp_path / "got.wav"
    pcm = sine(0.5, 300) + silence(0.1) + sine(0.25, 700)
    async with server(mode="record", protocol=protocol, record_path=str(path)) as srv:
        async with connect(srv.uri, compression=None) as ws:
            await ws.send("ignored text")
            if protocol == "pipecat":
                text = await serializer.serialize(TextFrame("ignored frame"))
                assert isinstance(text, bytes)
                await ws.send(text)
            for chunk in chunks(pcm):
                await ws.send(await encode(chunk, protocol))
    # stop() waited for the connection's end, so the file is complete.
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        assert w.readframes(w.getnframes()) == pcm
    assert f"recorded 0.85 s to {path}" in capsys.readouterr().out


async def test_record_resamples_other_rates(tmp_path):
    path = tmp_path / "got.wav"
    pcm24 = float_to_pcm(0.5 * np.sin(2 * np.pi * 300 * np.arange(24000) / 24000))
    async with server(mode="record", record_path=str(path)) as srv:
        async with connect(srv.uri, compression=None) as ws:
            for i in range(0, len(pcm24), 960):
                await ws.send(await encode(pcm24[i : i + 960], "pipecat", rate=24000))
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE
        frames = w.getnframes()
    assert abs(frames - RATE) <= 2  # 1 s at 16 kHz, the filter delay flushed at the end


async def test_tone_answers_the_end_of_an_utterance_on_time():
    latency, tone_secs = 0.3, 0.6
    async with (
        server(mode="tone", protocol="pipecat", latency=latency, tone_secs=tone_secs) as srv,
        connect(srv.uri, compression=None) as ws,
    ):
        listener = Listener(ws, "pipecat")
        start = await send_paced(ws, sine(1.0, 300) + silence(1.0), "pipecat")
        await asyncio.sleep(0.1)
        await listener.stop()

    # One utterance, ending where the sine's playback ends.
    assert len(srv.utterance_ends) == 1, srv.utterance_ends
    end = srv.utterance_ends[0]
    assert abs(end - (start + 1.0)) < 0.1

    # Nothing before the answer (the silence is not answered), and one answer only.
    assert listener.received
    first_arrival = listener.received[0][0]
    assert first_arrival > end
    assert len(srv.answers_sent_at) == 1
    error = first_arrival - (end + latency)
    print(
        f"TIMING tone: utterance end {end - start:.3f}s after send start (sine 1.000s), "
        f"answer sent {srv.answers_sent_at[0] - end:.3f}s and arrived {first_arrival - end:.3f}s "
        f"after it (latency {latency:.3f}s, error {error * 1000:+.1f} ms)"
    )
    assert abs(error) <= 0.06

    # The answer: tone_secs of 440 Hz, paced in real time.
    samples = pcm_to_float(listener.pcm)
    assert len(samples) == round(tone_secs * RATE)
    span = listener.received[-1][0] - first_arrival
    assert tone_secs - CHUNK - 0.05 <= span <= tone_secs - CHUNK + 0.05, span
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 0.1
    spectrum = np.abs(np.fft.rfft(samples))
    peak = np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))]
    assert abs(peak - 440) < 5, peak


async def test_tone_does_not_answer_silence():
    async with (
        server(mode="tone", protocol="raw", latency=0.0) as srv,
        connect(srv.uri, compression=None) as ws,
    ):
        listener = Listener(ws, "raw")
        await send_paced(ws, silence(0.6) + float_to_pcm(np.full(3200, 0.001)), "raw")
        await asyncio.sleep(0.4)
        await listener.stop()
    assert srv.utterance_ends == []
    assert srv.answers_sent_at == []
    assert listener.received == []


async def test_tone_answers_in_turn_without_overlap():
    # Latency 0 and a 1 s answer: the second utterance ends while the first answer plays,
    # so its answer waits for the first to finish.
    tone_secs = 1.0
    async with (
        server(mode="tone", protocol="raw", latency=0.0, tone_secs=tone_secs) as srv,
        connect(srv.uri, compression=None) as ws,
    ):
        listener = Listener(ws, "raw")
        pcm = sine(0.3, 300) + silence(0.4) + sine(0.3, 300) + silence(0.4)
        await send_paced(ws, pcm, "raw")
        await asyncio.sleep(1.2)
        await listener.stop()
    assert len(srv.utterance_ends) == 2
    first, second = srv.answers_sent_at
    assert second - first >= tone_secs - CHUNK - 0.01
    assert second - first <= tone_secs + 0.05
    assert len(listener.pcm) == 2 * len(make_tone(tone_secs, 440, RATE))


async def test_connections_have_their_own_state():
    async with server(mode="echo", protocol="raw") as srv:
        async with (
            connect(srv.uri, compression=None) as a,
            connect(srv.uri, compression=None) as b,
        ):
            await a.send(b"a" * 64)
            await b.send(b"b" * 64)
            assert await asyncio.wait_for(b.recv(), 2.0) == b"b" * 64
            assert await asyncio.wait_for(a.recv(), 2.0) == b"a" * 64
            await a.close()
            await b.send(b"c" * 64)
            assert await asyncio.wait_for(b.recv(), 2.0) == b"c" * 64
        assert srv.connections == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_run_server_prints_its_uri_and_exits_cleanly(sig, tmp_path):
    path = tmp_path / "got.wav"
    code = (
        "import asyncio\n"
        "from pipecat_wsclient.serve.server import ServeOptions, run_server\n"
        f"asyncio.run(run_server(ServeOptions(port=0, mode='record', protocol='raw', "
        f"record_path={str(path)!r})))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.fullmatch(
            r"Serving record on (ws://127\.0\.0\.1:\d+/ws) \(protocol raw\)\n", line
        )
        assert match, line
        async with connect(match.group(1), compression=None) as ws:
            await ws.send(silence(0.5))
            await asyncio.sleep(0.2)
            proc.send_signal(sig)
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1001
        rc = await asyncio.wait_for(proc.wait(), 10)
        out = (await proc.stdout.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert rc == 0
    assert out == f"recorded 0.50 s to {path}\n"
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == RATE // 2
