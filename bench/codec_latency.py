"""Inbound latency and echo round trip per codec, ours and Pipecat's client side by side.

A call leg as Asterisk's ``chan_websocket`` plays it: the server (this file
with ``--serve``, its own process) sends ``MEDIA_START`` and then the
caller's audio in 20 ms frames of the call's codec (``slin16`` 16 kHz;
``ulaw``, ``alaw`` and ``slin`` 8 kHz) on an absolute real-time schedule,
taking ``time.monotonic()`` right before each frame goes to the socket. The
caller's audio is 100 ms tone bursts every 500 ms, silence between. The
client (this file with ``--client``, its own process) runs one pipeline per
case at 16 or 24 kHz: ``transport.input() -> Tap -> Echo -> transport.output()``.

- *Inbound*: ``Tap`` (the first processor after the input) takes
  ``time.monotonic()`` per ``InputAudioRawFrame``. Mapped back to the
  caller's timeline (samples * in rate / pipeline rate), each input sample's
  latency is the arrival of the frame that carried it minus the send of its
  own frame (*sample* figures); each pipeline frame's is its arrival minus
  the send of the frame its newest audio came in (*frame* figures). A
  resampler that returns audio in lumps shows in both; one that holds back
  the last milliseconds of each frame shows in the sample p99 (those wait
  for the next frame, 20 ms).
- *Echo*: ``Echo`` turns the received audio into audio to send; the server
  times each burst from the send of its first frame to its onset's coming
  back (the arrival of the message that holds it plus its offset in that
  message): both resamplers, both pacings, and audio held for an output chunk.

Ours: :class:`~pipecat_wsclient.protocols.asterisk.AsteriskSerializer` with
``asterisk_params``. Pipecat's: its ``WebsocketClientTransport`` with
:class:`PipecatMediaSerializer`, written as Pipecat's telephony serializers
are (its ``ulaw_to_pcm``/``pcm_to_ulaw`` and A-law helpers and
``create_stream_resampler()``), 20 ms output chunks as ours.
``inbound_latency.py`` runs it (the ``codecs`` section of its result); alone
it writes ``codec_latency.json``. The figures (pure): ``codec_figures.py``.

Usage::

    .venv/bin/python bench/codec_latency.py [--quick] [--repeats 2] [--secs 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import PY, ROOT, cores, out_dir, pin, write_result
from codec_figures import (
    BURST_PERIOD_SECS,
    BURST_SECS,
    FORMATS,
    PTIME,
    bursts,
    echo_latencies,
    encode,
    inbound_figures,
    name,
    stats,
    summarize,
)

LEAD_SECS = 0.6
"""From the connection to the first frame: the pipeline is up by then."""
ECHO_GRACE_SECS = 0.6
"""After the last frame, the server waits this long for the echo, then closes (1000)."""
QUICK_CASES = [("slin16", 16000), ("ulaw", 16000), ("alaw", 16000)]
FULL_CASES = [*QUICK_CASES, ("slin", 16000), ("ulaw", 24000)]

# -- the server ------------------------------------------------------------------------


async def serve(core: int | None) -> None:
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    pin(core)

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        _, _, fmt, secs, sid = ws.request.path.split("/")
        rate, width = FORMATS[fmt]
        seconds = float(secs)
        wire = encode(bursts(rate, seconds), fmt)
        size = round(rate * PTIME) * width
        frames = [wire[i : i + size] for i in range(0, len(wire), size)]
        received: list[tuple[float, bytes]] = []

        async def read() -> None:
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        received.append((time.monotonic(), message))
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(read())
        sent: list[float] = []
        try:
            await ws.send(
                f"MEDIA_START connection_id:{sid} channel:WebSocket/INCOMING/0x1 "
                f"channel_id:1.1 format:{fmt} optimal_frame_size:{size} ptime:20"
            )
            loop = asyncio.get_running_loop()
            start = loop.time() + LEAD_SECS
            for k, frame in enumerate(frames):
                await asyncio.sleep(max(0.0, start + k * PTIME - loop.time()))
                sent.append(time.monotonic())
                await ws.send(frame)
            await asyncio.sleep(ECHO_GRACE_SECS)
            await ws.close(1000)
        except ConnectionClosed:
            pass
        reader.cancel()
        echo = echo_latencies(received, fmt, sent, seconds)
        print(json.dumps({"id": sid, "fmt": fmt, "sent": sent, "echo_ms": echo}), flush=True)

    def subprotocol(_connection: Any, offered: Any) -> Any:
        return "media" if "media" in offered else None

    async with ws_serve(
        handler,
        "127.0.0.1",
        0,
        select_subprotocol=subprotocol,
        compression=None,
        ping_interval=None,
        max_size=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.Future()


# -- the client ------------------------------------------------------------------------


async def run_client(impl: str, uri_base: str, cases: list[tuple[str, int]], secs: float) -> None:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    class Tap(FrameProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[tuple[float, int]] = []

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            now = time.monotonic()
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                self.arrivals.append((now, len(frame.audio) // 2))
            await self.push_frame(frame, direction)

    class Echo(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
            else:
                await self.push_frame(frame, direction)

    for fmt, rate in cases:
        sid = f"{impl}-{uuid.uuid4().hex[:8]}"
        uri = f"{uri_base}/media/{fmt}/{secs}/{sid}"
        tap = Tap()
        transport = make_transport(impl, fmt, uri)
        worker = PipelineWorker(
            Pipeline([transport.input(), tap, Echo(), transport.output()]),
            params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
            idle_timeout_secs=None,
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
        )
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        task = asyncio.create_task(runner.run())
        # Ours ends when the server closes (1000); Pipecat's client does not.
        done, _ = await asyncio.wait({task}, timeout=LEAD_SECS + secs + ECHO_GRACE_SECS + 1.0)
        if not done:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.cancel(), 5)
            await asyncio.wait({task}, timeout=5)
        if not task.done():
            print(f"{impl} {fmt}: the pipeline did not end; left running", file=sys.stderr)
        print(
            json.dumps(
                {"event": "case", "id": sid, "fmt": fmt, "rate": rate, "arrivals": tap.arrivals}
            ),
            flush=True,
        )


def make_transport(impl: str, fmt: str, uri: str) -> Any:
    if impl == "ours":
        from pipecat_wsclient import WebsocketClientTransport
        from pipecat_wsclient.protocols.asterisk import AsteriskSerializer, asterisk_params

        params = asterisk_params(
            AsteriskSerializer(end_timeout_secs=0), audio_out_end_silence_secs=0
        )
        return WebsocketClientTransport(uri, params)
    from pipecat.transports.websocket import client as pipecat_client

    return pipecat_client.WebsocketClientTransport(
        uri,
        pipecat_client.WebsocketClientParams(
            serializer=pipecat_media_serializer(fmt),
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            audio_out_10ms_chunks=2,
            audio_out_end_silence_secs=0,
        ),
    )


def pipecat_media_serializer(fmt: str) -> Any:
    """chan_websocket's binary media, as Pipecat's telephony serializers decode theirs."""
    from pipecat.audio.utils import (
        alaw_to_pcm,
        create_stream_resampler,
        pcm_to_alaw,
        pcm_to_ulaw,
        ulaw_to_pcm,
    )
    from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
    from pipecat.serializers.base_serializer import FrameSerializer

    wire_rate = FORMATS[fmt][0]

    class PipecatMediaSerializer(FrameSerializer):
        def __init__(self) -> None:
            super().__init__()
            self._rate = 16000
            self._in = create_stream_resampler()
            self._out = create_stream_resampler()

        async def setup(self, setup: Any) -> None:
            self._rate = setup.audio_in_sample_rate

        async def serialize(self, frame: Frame) -> str | bytes | None:
            if not isinstance(frame, OutputAudioRawFrame):
                return None
            if fmt == "ulaw":
                data = await pcm_to_ulaw(frame.audio, frame.sample_rate, wire_rate, self._out)
            elif fmt == "alaw":
                data = await pcm_to_alaw(frame.audio, frame.sample_rate, wire_rate, self._out)
            else:
                data = await self._out.resample(frame.audio, frame.sample_rate, wire_rate)
            return data or None

        async def deserialize(self, data: str | bytes) -> Frame | None:
            if isinstance(data, str):
                return None  # MEDIA_START and the other events
            if fmt == "ulaw":
                pcm = await ulaw_to_pcm(data, wire_rate, self._rate, self._in)
            elif fmt == "alaw":
                pcm = await alaw_to_pcm(data, wire_rate, self._rate, self._in)
            else:
                pcm = await self._in.resample(data, wire_rate, self._rate)
            return InputAudioRawFrame(pcm, self._rate, 1) if pcm else None

    return PipecatMediaSerializer()


# -- running it --------------------------------------------------------------------------


class Server:
    """This file's server in its own process; its records by session id."""

    def __init__(self, core: int | None):
        cmd = [PY, __file__, "--serve"] + (["--core", str(core)] if core is not None else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]
        self.records: dict[str, dict[str, Any]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            record = json.loads(line)
            self.records[record["id"]] = record

    def record(self, sid: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while sid not in self.records:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server record for {sid}")
            time.sleep(0.05)
        return self.records[sid]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(
    *,
    quick: bool,
    impls: list[str],
    client_core: int | None,
    server_core: int | None,
    repeats: int | None = None,
    secs: float | None = None,
) -> dict[str, Any]:
    """Every case for every implementation (alternating order per repeat): the report section."""
    cases = QUICK_CASES if quick else FULL_CASES
    secs = secs or (2.0 if quick else 10.0)
    repeats = repeats or (1 if quick else 3)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name(c): {i: [] for i in impls} for c in cases
    }
    server = Server(server_core)
    try:
        for rep in range(repeats):
            for impl in impls if rep % 2 == 0 else impls[::-1]:
                cmd = [PY, __file__, "--client", impl, "--port", str(server.port)]
                cmd += ["--secs", str(secs), "--cases", *(f"{f}:{r}" for f, r in cases)]
                if client_core is not None:
                    cmd += ["--core", str(client_core)]
                timeout = 60 + len(cases) * (LEAD_SECS + secs + ECHO_GRACE_SECS + 8)
                try:
                    out = subprocess.run(
                        cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=True
                    )
                except subprocess.TimeoutExpired as e:
                    stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr
                    raise RuntimeError(f"{impl} client: {(stderr or '')[-3000:]}") from e
                for line in out.stdout.splitlines():
                    if not line.startswith('{"event": "case"'):
                        continue
                    case = json.loads(line)
                    record = server.record(case["id"])
                    figures = inbound_figures(
                        case["arrivals"], record["sent"], case["fmt"], case["rate"]
                    )
                    figures["echo_ms"] = stats(sorted(record["echo_ms"]))
                    runs[name((case["fmt"], case["rate"]))][impl].append(figures)
                    print(f"{impl:8s} {name((case['fmt'], case['rate'])):14s} {brief(figures)}")
    finally:
        server.close()
    return {"config": config(cases, secs, repeats, impls), "summary": summarize(runs), "runs": runs}


def brief(f: dict[str, Any]) -> str:
    if "sample_ms" not in f:
        return f"frames {f['frames']} (too few)"
    return (
        f"frames {f['frames']}/{f['frames_sent']} ({f['frames_of_20ms']:.0%} of 20 ms, largest "
        f"{f['largest_frame_ms']} ms) sample p50/p99 {f['sample_ms']['p50']}/"
        f"{f['sample_ms']['p99']} ms, frame p99 {f['frame_ms']['p99']} ms, "
        f"echo p50 {f['echo_ms']['p50']} ms (n={f['echo_ms']['n']})"
    )


def config(cases: list[tuple[str, int]], secs: float, repeats: int, impls: list[str]) -> dict:
    return {
        "cases": [name(c) for c in cases],
        "secs_per_case": secs,
        "repeats": repeats,
        "impls": impls,
        "signal": f"{BURST_SECS * 1000:.0f} ms 1 kHz bursts every {BURST_PERIOD_SECS} s on silence",
        "measured_at": "first processor after transport.input(); echo at the server",
        "ours": "AsteriskSerializer, asterisk_params (20 ms output chunks)",
        "pipecat": (
            "pipecat.transports.websocket.client with a serializer written as Pipecat's "
            "telephony ones (ulaw_to_pcm/pcm_to_ulaw, create_stream_resampler), 20 ms chunks"
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few seconds per case (CI smoke test)")
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--secs", type=float, default=None, help="seconds of audio per case")
    p.add_argument("--serve", action="store_true", help="be the server (a subprocess)")
    p.add_argument("--client", choices=("ours", "pipecat"), help="be a client (a subprocess)")
    p.add_argument("--port", type=int)
    p.add_argument("--cases", nargs="+", default=[])
    p.add_argument("--core", type=int, default=None)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.core))
    elif args.client:
        pin(args.core)
        cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases]
        uri_base = f"ws://127.0.0.1:{args.port}"
        asyncio.run(run_client(args.client, uri_base, cases, args.secs or 2.0))
        sys.stdout.flush()
        os._exit(0)  # tearing down is not measured
    else:
        client_core, server_core = cores()
        started = time.monotonic()
        report = run(
            quick=args.quick,
            impls=["ours", "pipecat"],
            client_core=client_core,
            server_core=server_core,
            repeats=args.repeats,
            secs=args.secs,
        )
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        write_result(out_dir(args), "codec_latency", {"quick": args.quick, **report})


if __name__ == "__main__":
    main()
