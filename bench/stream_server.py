"""The server end of the stream benchmarks, meant to run in its own process.

Per connection (path ``/s/<session id>``) it reads and counts what arrives
(audio bytes of Pipecat protobuf audio frames, messages) and, once told to
``go``, sends 20 ms protobuf audio chunks (speech, looped) in real time on an
absolute schedule: chunk ``k`` of a session is due at
``t0 + phase + k * 20 ms``. Sessions are spread over 20 phases 1 ms apart (as
calls that started at different times), and one 1 ms ticker sends each phase's
chunks, instead of a timer per connection, so that the server stays cheap
next to the client under test. A connection whose write buffer holds more
than ``WRITE_BUFFER_LIMIT`` (the client is not reading) skips chunks; they
are counted.

In ``stamp`` mode the first 8 bytes of each chunk are the send time
(``time.monotonic()``, CLOCK_MONOTONIC, system-wide on Linux) as a float64,
taken right before the chunk is handed to the socket.

Two listeners: ``plain_port`` declines permessage-deflate, ``deflate_port``
accepts it (websockets' default, as most servers). The first line on stdout
is ``{"plain_port": ..., "deflate_port": ...}``.

Control, on ``ws://.../control`` (JSON text, one reply per request):

- ``{"cmd": "snap", "prefix": p}``: ``{"t", "cpu", "sessions": {id: [audio bytes
  received, messages received, chunks sent, chunks skipped, closed at (monotonic)
  or null]}}`` for the sessions whose id starts with ``p``;
- ``{"cmd": "go", "prefix": p, "stamp": bool}``: start sending to those sessions;
- ``{"cmd": "forget", "prefix": p}``: drop their records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import struct
import sys
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import CHUNK_BYTES, CHUNK_SECS, RATE, pin, speech_pcm

TICK_SECS = 0.001
PHASES = round(CHUNK_SECS / TICK_SECS)
WRITE_BUFFER_LIMIT = 64 * 1024

from pipecat.frames.protobufs import frames_pb2 as pb  # noqa: E402


class Session:
    __slots__ = ("closed_at", "id", "rx_audio", "rx_msgs", "skipped", "stamp", "tx_msgs", "ws")

    def __init__(self, sid: str, ws: ServerConnection):
        self.id = sid
        self.ws: ServerConnection | None = ws
        self.rx_audio = 0
        self.rx_msgs = 0
        self.tx_msgs = 0
        self.skipped = 0
        self.closed_at: float | None = None
        self.stamp = False

    def row(self) -> list:
        return [self.rx_audio, self.rx_msgs, self.tx_msgs, self.skipped, self.closed_at]


def audio_message(audio: bytes) -> bytes:
    frame = pb.Frame()
    frame.audio.audio = audio
    frame.audio.sample_rate = RATE
    frame.audio.num_channels = 1
    return frame.SerializeToString()


class StreamServer:
    def __init__(self) -> None:
        pcm = speech_pcm()
        self.chunks = [pcm[i : i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
        self.payloads = [audio_message(c) for c in self.chunks]
        self.sessions: dict[str, Session] = {}
        self.phases: list[set[Session]] = [set() for _ in range(PHASES)]
        self.next_phase = 0

    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if path == "/control":
            await self.control(ws)
            return
        sid = path[3:] if path.startswith("/s/") else path
        session = Session(sid, ws)
        self.sessions[sid] = session
        parse = pb.Frame.FromString
        try:
            async for message in ws:
                session.rx_msgs += 1
                if isinstance(message, bytes):
                    frame = parse(message)
                    if frame.WhichOneof("frame") == "audio":
                        session.rx_audio += len(frame.audio.audio)
        except ConnectionClosed:
            pass
        finally:
            session.closed_at = time.monotonic()
            session.ws = None
            for phase in self.phases:
                phase.discard(session)

    async def control(self, ws: ServerConnection) -> None:
        try:
            await self._control(ws)
        except ConnectionClosed:
            pass

    async def _control(self, ws: ServerConnection) -> None:
        async for message in ws:
            cmd = json.loads(message)
            prefix = cmd.get("prefix", "")
            chosen = [s for sid, s in self.sessions.items() if sid.startswith(prefix)]
            reply: dict
            if cmd["cmd"] == "snap":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                reply = {
                    "t": time.monotonic(),
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "sessions": {s.id: s.row() for s in chosen},
                }
            elif cmd["cmd"] == "go":
                started = 0
                for s in chosen:
                    if s.ws is not None and not any(s in p for p in self.phases):
                        s.stamp = bool(cmd.get("stamp"))
                        self.phases[self.next_phase].add(s)
                        self.next_phase = (self.next_phase + 1) % PHASES
                        started += 1
                reply = {"started": started}
            elif cmd["cmd"] == "forget":
                for s in chosen:
                    del self.sessions[s.id]
                reply = {"forgot": len(chosen)}
            else:
                reply = {"error": f"unknown command {cmd['cmd']!r}"}
            await ws.send(json.dumps(reply))

    def send_phase(self, phase: set[Session], tick: int) -> None:
        index = (tick // PHASES) % len(self.chunks)
        plain = []
        for s in phase:
            ws = s.ws
            if ws is None:
                continue
            if ws.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                s.skipped += 1
                continue
            s.tx_msgs += 1
            if s.stamp:
                audio = struct.pack("<d", time.monotonic()) + self.chunks[index][8:]
                broadcast([ws], audio_message(audio))
            else:
                plain.append(ws)
        if plain:
            broadcast(plain, self.payloads[index])

    async def ticker(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick = 0
        while True:
            now = loop.time()
            while start + tick * TICK_SECS <= now:
                phase = self.phases[tick % PHASES]
                if phase:
                    self.send_phase(phase, tick)
                tick += 1
            await asyncio.sleep(start + tick * TICK_SECS - loop.time())


async def main(core: int | None) -> None:
    pin(core)
    server = StreamServer()
    options = dict(max_size=None, ping_interval=None)
    async with (
        serve(server.handler, "127.0.0.1", 0, compression=None, **options) as plain,  # type: ignore[arg-type]
        serve(server.handler, "127.0.0.1", 0, compression="deflate", **options) as deflate,  # type: ignore[arg-type]
    ):
        ports = {
            "plain_port": next(iter(plain.sockets)).getsockname()[1],
            "deflate_port": next(iter(deflate.sockets)).getsockname()[1],
        }
        print(json.dumps(ports), flush=True)
        await server.ticker()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Stream benchmark server (see the module doc).")
    p.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    args = p.parse_args()
    try:
        asyncio.run(main(args.core))
    except KeyboardInterrupt:
        pass
