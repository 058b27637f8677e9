"""EndFrame is bounded whatever the peer does, and the end silence is not "dropped audio".

Issue 24, item 1: EndFrame with audio queued behind a send to a peer that
accepts and never reads, default parameters (reconnection on). The write
timed out, the transport redialed, the new connection stalled too, and so
on every ~5 s: the runner had not returned 30 s after the EndFrame (with
reconnection off it ended in 4.7 s). Once the EndFrame is queued a lost
connection is not redialed any more: the runner returns within end silence
+ write timeout + close timeout (+1 s), the loss is reported
(``on_connection_error`` and a non-fatal ``ErrorFrame``: the pipeline was
ending anyway) and the audio not sent is counted as dropped.

Issue 24, item 4: when Asterisk hangs up normally (1000) while the end
silence is being sent, the transport warned "dropping output ... 2.00s of
audio" and counted the end silence as dropped, though the bot had finished
speaking. Dropped audio is audio the bot made that the far end never got:
end silence not sent is counted apart (``stats.end_silence_secs_unsent``),
without a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from loguru import logger
from pipecat.frames.frames import EndFrame, TTSAudioRawFrame
from test_reconnect import Events
from websockets.asyncio.server import ServerConnection, serve

from harness import pcm, run_pipeline, wait_for
from pipecat_wsclient import FailureKind, WebsocketClientParams, WebsocketClientTransport
from pipecat_wsclient.protocols import AsteriskSerializer
from support.fake_asterisk import FakeAsterisk
from support.restartable import RestartableServer

TINY_RCVBUF = 4096
"""The stalling peer's receive buffer (the kernel doubles it)."""
SMALL_MSS = 1000
"""The stalling peer's maximum segment size: the client's kernel sizes its send
buffer on it (about 120 kB then, against 2.8 MB on loopback's 64 kB segments),
so sends to a peer that stopped reading block within 120 kB."""


@dataclass
class StallingPeer:
    """A WebSocket server whose every connection is accepted, then never read."""

    port: int = 0
    connections: int = 0
    live: list[ServerConnection] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def tiny_buffer_socket(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 whose connections fill up fast when not read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_RCVBUF)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SMALL_MSS)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@contextlib.asynccontextmanager
async def stalling_peer() -> AsyncIterator[StallingPeer]:
    """Accept every connection (the handshake completes), then never read from it."""
    peer = StallingPeer()

    async def handler(ws: ServerConnection) -> None:
        peer.connections += 1
        peer.live.append(ws)
        ws.transport.pause_reading()
        await ws.wait_closed()

    sock = tiny_buffer_socket()
    peer.port = sock.getsockname()[1]
    async with serve(
        handler, sock=sock, compression=None, ping_interval=None, close_timeout=0.2
    ) as server:
        try:
            yield peer
        finally:
            for connection in server.connections:
                connection.transport.abort()


def bot_audio_secs(stats) -> float:
    """What became of the bot's audio: sent (end silence left out), dropped, interrupted."""
    return (
        stats.audio_secs_sent
        - stats.end_silence_secs_sent
        + stats.dropped_audio_secs
        + stats.interrupted_audio_secs
    )


async def until_sends_block(transport: WebsocketClientTransport, timeout: float = 30.0) -> float:
    """Wait until no more audio goes out (a send is blocked); return the seconds sent."""
    await wait_for(lambda: transport.stats.audio_secs_sent > 0.2, timeout)
    last = -1.0
    deadline = time.monotonic() + timeout
    while transport.stats.audio_secs_sent != last:
        assert time.monotonic() < deadline, "the peer kept taking audio"
        last = transport.stats.audio_secs_sent
        await asyncio.sleep(0.3)
    return last


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reconnect", "keepalive"),
    [(True, True), (False, True), (True, False)],
    ids=["reconnect on", "reconnect off", "reconnect on, no keepalive: the write times out"],
)
async def test_end_with_audio_stuck_behind_a_stalled_peer_is_bounded(reconnect, keepalive):
    """Default params: runner back within end silence + write timeout + close timeout + 1 s."""
    rate, channels = 16000, 1
    clip_secs = 30.0
    params = WebsocketClientParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        **({} if reconnect else {"reconnect": None}),
        **({} if keepalive else {"ping_interval": None}),
    )
    bound = params.audio_out_end_silence_secs + params.write_timeout + params.close_timeout + 1.0
    async with stalling_peer() as peer:
        t = WebsocketClientTransport(peer.uri, params)
        errors = []

        @t.event_handler("on_connection_error")
        async def on_error(_t, error):
            errors.append(error)

        async with run_pipeline(t, rate=rate) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(pcm(clip_secs, rate, channels), rate, channels))
            stuck_at = await until_sends_block(t)
            assert stuck_at < clip_secs / 2  # the peer really stalled us
            start = time.monotonic()
            await p.worker.queue_frame(EndFrame())
            with contextlib.suppress(TimeoutError):
                await p.wait(bound + 10)
            took = time.monotonic() - start
            ended = p.task.done()
    s = t.stats
    print(
        f"reconnect {'on' if reconnect else 'off'}: runner returned {took:.2f}s after the "
        f"EndFrame (bound {bound:.1f}s); connections {peer.connections}; sent "
        f"{s.audio_secs_sent:.2f}s dropped {s.dropped_audio_secs:.2f}s"
    )
    assert ended, f"the runner had not returned {took:.1f}s after the EndFrame"
    assert took < bound, f"{took:.2f}s > {bound:.1f}s"
    assert peer.connections == 1  # not redialed for the sake of the ending call
    # Reported once: on_connection_error, and an ErrorFrame that does not cancel the end.
    [error] = errors
    noticed_by = {FailureKind.WRITE_TIMEOUT, FailureKind.KEEPALIVE} if keepalive else set()
    assert error.kind in noticed_by | {FailureKind.WRITE_TIMEOUT}
    assert [e.fatal for e in p.errors] == [False]
    # Counted: the audio not sent is dropped, and everything adds up (within a chunk).
    assert s.dropped_audio_secs >= clip_secs - stuck_at - 1.0
    assert abs(bot_audio_secs(s) - clip_secs) <= 0.04 + 1e-6


async def test_end_during_an_outage_stops_redialing_at_once():
    """The server is down when the EndFrame comes (reconnection on, default params): the
    redial stops there, reported once; what was held and queued is counted as dropped.
    Before, the queued audio and the 2 s end silence were paced into the outage buffer
    (the silence pushing the bot's audio out of it) while the redial went on."""
    clip_secs = 3.0
    async with RestartableServer() as server:
        params = WebsocketClientParams(audio_in_enabled=True, audio_out_enabled=True)
        t = WebsocketClientTransport(server.uri, params)
        events = Events(t)
        async with run_pipeline(t) as p:
            await wait_for(lambda: t.session.is_connected, 5)
            await p.send(TTSAudioRawFrame(pcm(0.5), 16000, 1))
            await asyncio.sleep(0.2)
            await server.stop()  # down, and stays down
            await wait_for(lambda: len(events.reconnecting) >= 2, 5)
            await p.send(TTSAudioRawFrame(pcm(clip_secs, seed=2), 16000, 1))
            start = time.monotonic()
            await p.worker.queue_frame(EndFrame())
            await p.wait(15)
            took = time.monotonic() - start
            attempts_after_end = [e for e in events.reconnecting if e[0] > start + 0.2]
    s = t.stats
    print(f"ended {took:.2f}s after the EndFrame; dropped {s.dropped_audio_secs:.2f}s")
    assert took < params.write_timeout + params.close_timeout + 1.0
    assert attempts_after_end == []
    [error] = events.errors
    assert "the call is ending" in str(error)
    assert [e.fatal for e in p.errors] == [False]  # the pipeline ended as it was ending
    assert s.dropped_audio_secs >= clip_secs - 0.04
    assert s.end_silence_secs_sent == 0
    assert abs(bot_audio_secs(s) - (0.5 + clip_secs)) <= 0.04 + 1e-6


# -- item 4: the end silence ------------------------------------------------------------


@contextlib.contextmanager
def captured_logs(level: str = "WARNING"):
    """Loguru records at ``level`` and above, as ``(level name, message)``."""
    records: list[tuple[str, str]] = []

    def keep(message) -> None:
        records.append((message.record["level"].name, message.record["message"]))

    sink = logger.add(keep, level=level)
    try:
        yield records
    finally:
        logger.remove(sink)


ASTERISK_RATE = 16000
BYTES_PER_SEC = 2 * ASTERISK_RATE  # slin16


async def asterisk_call(bot_secs: float, hang_up_after_bytes: int):
    """The bot says ``bot_secs`` of audio then ends (EndFrame, default 2 s end silence);
    the fake Asterisk hangs up (1000) once it has received ``hang_up_after_bytes``."""
    async with FakeAsterisk(format="slin16", close_reply_code=None) as asterisk:
        params = WebsocketClientParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=ASTERISK_RATE,
            audio_out_sample_rate=ASTERISK_RATE,
            serializer=AsteriskSerializer(),
        )
        assert params.audio_out_end_silence_secs == 2  # the default, as in the issue
        t = WebsocketClientTransport(asterisk.uri, params)
        with captured_logs() as logs:
            async with run_pipeline(t, rate=ASTERISK_RATE) as p:
                await wait_for(lambda: t.session.is_connected, 5)
                await p.send(
                    TTSAudioRawFrame(pcm(bot_secs, ASTERISK_RATE), ASTERISK_RATE, 1), EndFrame()
                )
                await wait_for(lambda: len(asterisk.media_in) >= hang_up_after_bytes, 15, 0.001)
                await asterisk.caller_hangup()
                await p.wait(10)
        return t.stats, logs, bytes(asterisk.media_in), p


@pytest.mark.parametrize("silence_heard", [0.0, 0.5], ids=["at the last audio", "0.5 s into it"])
async def test_hang_up_during_the_end_silence_drops_nothing_and_warns_not(silence_heard):
    """Asterisk hangs up (1000) right after the bot's last audio, during the end silence."""
    bot_secs = 1.0
    heard = int((bot_secs + silence_heard) * BYTES_PER_SEC)
    stats, logs, media, p = await asterisk_call(bot_secs, heard)
    print(
        f"{stats.end_silence_secs_sent:.2f}s of end silence sent, "
        f"{stats.end_silence_secs_unsent:.2f}s not; warnings: {logs}"
    )
    assert len(media) >= bot_secs * BYTES_PER_SEC
    assert not p.errors
    assert [m for lvl, m in logs if "dropping output" in m] == []
    assert logs == [], logs
    assert stats.dropped_audio_secs == 0
    assert stats.dropped_frames == 0
    assert stats.end_silence_secs_sent >= silence_heard - 0.04  # within a chunk
    assert stats.end_silence_secs_unsent > 1.0  # most of the 2 s were not needed
    assert stats.end_silence_secs_sent + stats.end_silence_secs_unsent == pytest.approx(2.0)
    assert abs(bot_audio_secs(stats) - bot_secs) <= 0.04 + 1e-6


async def test_hang_up_with_bot_audio_still_queued_drops_it_with_a_warning():
    """The counter-test: Asterisk hangs up while real bot audio is still queued."""
    bot_secs = 3.0
    stats, logs, media, p = await asterisk_call(bot_secs, int(1.0 * BYTES_PER_SEC))
    unheard = bot_secs - len(media) / BYTES_PER_SEC
    print(f"dropped {stats.dropped_audio_secs:.2f}s (the far end missed {unheard:.2f}s); {logs}")
    assert not p.errors
    assert any(lvl == "WARNING" and "dropping output" in m for lvl, m in logs), logs
    assert stats.dropped_audio_secs > 1.0
    # What the far end missed is what was counted as dropped, within two chunks
    # (one in flight when it hung up).
    assert abs(stats.dropped_audio_secs - unheard) <= 0.08 + 1e-6
    assert stats.end_silence_secs_sent == 0
    assert abs(bot_audio_secs(stats) - bot_secs) <= 0.04 + 1e-6
