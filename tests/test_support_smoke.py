"""Smoke tests for tests/support, using only the websockets client."""

import asyncio
import base64
import contextlib
import itertools
import json
import ssl
import time
from dataclasses import dataclass

import numpy as np
import pytest
from pipecat.audio.utils import audioop
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.plain_bot import (
    BotOptions,
    EnergyVad,
    decode_ulaw,
    encode_ulaw,
    serve_plain_bot,
    tone,
)
from support.plain_bots import plain_bot
from support.processes import pipecat_echo_server
from support.servers import (
    closing_server,
    echo_server,
    junk_server,
    record_server,
    refused_uri,
    silent_server,
    status_server,
    stop_reading_server,
    wait_until,
)
from support.tls import make_tls, tls_echo_server

pytestmark = pytest.mark.slow  # the support servers in subprocesses


async def test_echo_round_trip():
    async with echo_server(subprotocols=["pipecat"]) as server:
        assert server.uri == f"ws://127.0.0.1:{server.port}/ws"
        async with connect(server.uri, subprotocols=["pipecat"], compression=None) as ws:
            await ws.send(b"\x01\x02")
            assert await ws.recv() == b"\x01\x02"
            await ws.send("hi")
            assert await ws.recv() == "hi"
        await wait_until(lambda: server.close_codes == [1000])
        assert server.messages == [b"\x01\x02", "hi"]
        assert server.connections == 1
        assert server.subprotocols == ["pipecat"]
        assert server.request_headers[0]["sec-websocket-protocol"] == "pipecat"
        assert server.received[0][0] <= server.received[1][0] <= time.monotonic()


async def test_record_server_records_without_echo():
    async with record_server(send_on_connect=["hello", b"\x00"]) as server:
        async with connect(server.uri) as ws:
            assert await ws.recv() == "hello"
            assert await ws.recv() == b"\x00"
            await ws.send(b"abc")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
        await wait_until(lambda: server.close_codes == [1000])
        assert server.messages == [b"abc"]


async def test_status_server_rejects():
    async with status_server(401) as server:
        with pytest.raises(InvalidStatus) as exc_info:
            async with connect(server.uri):
                pass
        assert exc_info.value.response.status_code == 401
        assert exc_info.value.response.body == b"nope"
        assert server.attempts == 1
        assert server.connections == 0


async def test_silent_server_times_out():
    async with silent_server() as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with connect(server.uri, open_timeout=0.5):
                pass
        assert 0.4 < time.monotonic() - started < 3
        assert server.attempts == 1


async def test_junk_server_sends_in_order_then_echoes():
    async with junk_server([b"\xff\xfe", "not a frame", b""]) as server:
        async with connect(server.uri) as ws:
            assert [await ws.recv() for _ in range(3)] == [b"\xff\xfe", "not a frame", b""]
            await ws.send("ping")
            assert await ws.recv() == "ping"


async def test_closing_server_closes_with_code():
    async with closing_server(4001, "bye", after=0.1) as server:
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "bye"
        await wait_until(lambda: server.close_codes == [4001])


async def test_stop_reading_server_blocks_writes():
    async with stop_reading_server() as server:
        async with connect(server.uri, close_timeout=0.5, max_size=None) as ws:
            await asyncio.wait_for(server.connected.wait(), 2)
            chunk = b"\x01" * 65536
            for _ in range(2000):  # Up to 128 MiB; loopback buffers are a few MiB.
                try:
                    await asyncio.wait_for(ws.send(chunk), 0.5)
                except TimeoutError:
                    break
            else:
                pytest.fail("send never blocked")
            # websockets' close() drains before close_timeout applies, so it would
            # hang while the server doesn't read: abort instead.
            ws.transport.abort()
        assert server.received == []


async def test_refused_uri():
    with pytest.raises(OSError):
        async with connect(refused_uri(), open_timeout=2):
            pass


async def test_tls_echo_server():
    tls = make_tls()
    assert tls.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    async with tls_echo_server(tls.server_context) as server:
        assert server.uri.startswith("wss://127.0.0.1:")
        async with connect(server.uri, ssl=tls.client_context) as ws:
            await ws.send("secure")
            assert await ws.recv() == "secure"
        async with connect(server.uri, ssl=ssl.create_default_context(cafile=tls.ca_file)) as ws:
            await ws.send(b"x")
            assert await ws.recv() == b"x"
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(server.uri):
                pass


async def test_pipecat_echo_server_echoes_audio():
    serializer = ProtobufFrameSerializer()
    audio = bytes((i % 250) + 1 for i in range(3200))  # 100 ms, no zero byte.
    payload = await serializer.serialize(
        OutputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1)
    )
    with pipecat_echo_server() as uri:
        async with connect(uri) as ws:
            await ws.send(payload)
            echoed = b""
            chunks = []
            while len(echoed) < len(audio):
                frame = await serializer.deserialize(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, InputAudioRawFrame):
                    assert (frame.sample_rate, frame.num_channels) == (16000, 1)
                    chunks.append(len(frame.audio))
                    echoed += frame.audio
    assert echoed[: len(audio)] == audio
    assert set(echoed[len(audio) :]) <= {0}  # Last partial chunk is padded with silence.
    assert chunks == [1280, 1280, 1280]


# The plain Twilio bot (issue 23), driven by a Twilio caller written by hand.


@dataclass
class TwilioCallHeard:
    """What the hand-written Twilio caller sent and got back."""

    sent: list[tuple[float, str]]  # (send time, base64 payload) of each media message
    received: list[tuple[float, dict]]  # (arrival time, message) of each bot message
    close_code: int | None

    def events(self, event: str) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in self.received if m["event"] == event]


def caller_frames(*parts: tuple[str, float]) -> list[bytes]:
    """20 ms mu-law frames: ``("tone", secs)`` at -12 dBFS, ``("silence", secs)``."""
    frames = []
    for kind, secs in parts:
        t = np.arange(round(secs * 8000)) / 8000
        amplitude = 8000 if kind == "tone" else 0
        pcm = (amplitude * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
        ulaw = audioop.lin2ulaw(pcm, 2)  # Pipecat's codec, not the bot's.
        frames += [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]
    return frames


async def twilio_call(uri: str, *parts: tuple[str, float], listen: float = 0.5) -> TwilioCallHeard:
    """Be Twilio for one Media Stream: ``connected``, ``start``, paced ``media``, ``stop``.

    Marks are echoed at once (nothing plays here); the call ends ``listen``
    seconds after the last frame, or when the bot closes.
    """
    stream_sid, sent, received, sequence = "MZ" + "0" * 32, [], [], itertools.count(1)

    def message(event: str, **fields) -> str:
        return json.dumps({"event": event, "sequenceNumber": str(next(sequence)), **fields,
                           "streamSid": stream_sid})  # fmt: skip

    async with connect(uri, compression=None) as ws:

        async def play() -> None:
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await ws.send(message("start", start={
                "streamSid": stream_sid, "accountSid": "AC" + "0" * 32, "callSid": "CA" + "0" * 32,
                "tracks": ["inbound"], "customParameters": {"who": "smoke"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }))  # fmt: skip
            begin = time.monotonic()
            for i, frame in enumerate(caller_frames(*parts)):
                await asyncio.sleep(max(0.0, begin + i * 0.02 - time.monotonic()))
                payload = base64.b64encode(frame).decode()
                media = {"track": "inbound", "chunk": str(i + 1), "timestamp": str(i * 20)}
                await ws.send(message("media", media={**media, "payload": payload}))
                sent.append((time.monotonic(), payload))
            await asyncio.sleep(listen)
            await ws.send(message("stop", stop={"accountSid": "AC", "callSid": "CA"}))
            await ws.close()

        player = asyncio.create_task(play())
        try:
            async for text in ws:
                received.append((time.monotonic(), json.loads(text)))
                if received[-1][1]["event"] == "mark":
                    await ws.send(message("mark", mark=received[-1][1]["mark"]))
        except ConnectionClosed:
            pass
        player.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await player
    return TwilioCallHeard(sent, received, ws.close_code)


def test_plain_bot_mulaw_is_bit_exact_with_audioop():
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert encode_ulaw(every_sample) == audioop.lin2ulaw(every_sample, 2)
    assert decode_ulaw(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_plain_bot_vad_marks_onset_and_end_on_the_media_timeline():
    vad = EnergyVad(start_ms=100, silence_ms=200)
    loud, quiet = tone(0.02, 440), bytes(320)
    frames = [quiet] * 3 + [loud] * 10 + [quiet] * 5 + [loud] + [quiet] * 10
    decisions = {i: d for i, f in enumerate(frames) if (d := vad.feed(i, f))}
    assert decisions == {7: "started", 28: "ended"}  # onset frame 3; last loud frame 18
    assert (vad.onset * 20, (vad.last_voiced + 1) * 20) == (60, 380)
    words = np.frombuffer(tone(1.0, 440, pause_ms=200, word_ms=300), "<i2")
    assert len(words) == 8000 and not words[2400:4000].any() and words[4000:6400].any()


async def test_plain_bot_answers_after_its_latency():
    options = BotOptions(latency=0.3, silence_ms=200, answer_secs=0.5)
    async with serve_plain_bot(options) as bot:
        heard = await twilio_call(bot.uri, ("tone", 0.4), ("silence", 1.6))
    start = bot.events("start")[0]
    assert start["media_format"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["custom_parameters"] == {"who": "smoke"}
    [utterance] = bot.events("utterance")
    assert (utterance["start_ms"], utterance["end_ms"]) == (0, 400)
    [answer] = bot.events("answer-started")
    assert 480 <= answer["response_ms"] <= 560  # silence_ms + latency, on the media timeline
    assert 470 <= answer["response_time_ms"] <= 650
    media = heard.events("media")
    assert len(media) == 25 and bot.events("answer-finished")[0]["secs"] == pytest.approx(0.5)
    first_answer = media[0][0] - heard.sent[19][0]  # after our last tone frame went out
    assert 0.47 <= first_answer <= 0.67
    assert [m["mark"]["name"] for _, m in heard.events("mark")] == ["answer-1"]
    assert heard.events("mark")[0][0] > media[-1][0]
    assert [m["streamSid"] for _, m in heard.received] == ["MZ" + "0" * 32] * 26
    assert [r["name"] for r in bot.events("mark")] == ["answer-1"]  # our echo reached it
    assert bot.events("closed")[0]["code"] == 1000


async def test_plain_bot_greets_before_the_caller_speaks():
    async with serve_plain_bot(BotOptions(modes=frozenset({"greet"}), greet_secs=0.4)) as bot:
        heard = await twilio_call(bot.uri, ("silence", 0.8))
    media = heard.events("media")
    assert len(media) == 20 and media[0][0] < heard.sent[5][0]
    assert bot.events("greeting-started")[0]["media_ms"] <= 100
    assert heard.events("mark")[0][1]["mark"]["name"] == "greeting-0"
    assert bot.events("utterance") == []


async def test_plain_bot_echoes_payloads_after_its_delay():
    async with serve_plain_bot(BotOptions(modes=frozenset({"echo"}), delay=0.1)) as bot:
        heard = await twilio_call(bot.uri, ("tone", 0.2), ("silence", 0.2), listen=0.4)
    echoed = [(t, m["media"]["payload"]) for t, m in heard.events("media")]
    assert [p for _, p in echoed] == [p for _, p in heard.sent]
    assert all(0.09 <= t - s <= 0.25 for (t, _), (s, _) in zip(echoed, heard.sent, strict=True))
    assert bot.events("closed")[0]["chunks_out"] == 20


async def test_plain_bot_crash_closes_1011_and_drop_1006():
    async with serve_plain_bot(BotOptions(modes=frozenset({"crash"}))) as bot:
        heard = await twilio_call(bot.uri, ("silence", 0.4))
    assert heard.close_code == 1011 and heard.received == []
    assert [r["event"] for r in bot.reports] == ["connected", "start", "crash"]
    async with serve_plain_bot(BotOptions(modes=frozenset({"crash"}), drop=True)) as bot:
        heard = await twilio_call(bot.uri, ("silence", 0.4))
    assert heard.close_code == 1006
    assert bot.events("closed")[0]["code"] == 1006


async def test_plain_bot_hangs_up_1000_after_its_answer():
    options = BotOptions(modes=frozenset({"answer", "hangup"}), latency=0.1, silence_ms=200,
                         answer_secs=0.3)  # fmt: skip
    async with serve_plain_bot(options) as bot:
        heard = await twilio_call(bot.uri, ("tone", 0.4), ("silence", 3.0))
    assert heard.close_code == 1000
    assert len(heard.events("media")) == 15 and heard.events("mark")
    assert bot.events("hangup")[0]["mark_echoed"] is True
    assert len(heard.sent) < 100  # the bot ended the call, not us


async def test_plain_bot_barge_in_stops_and_clears():
    options = BotOptions(modes=frozenset({"answer", "barge"}), latency=0.1, silence_ms=200,
                         answer_secs=2.0, stop_ms=100)  # fmt: skip
    async with serve_plain_bot(options) as bot:
        heard = await twilio_call(
            bot.uri, ("tone", 0.4), ("silence", 0.8), ("tone", 0.4), ("silence", 0.6), listen=0
        )
    [stopped] = bot.events("answer-stopped")
    assert stopped["n"] == 1 and 0.3 <= stopped["secs"] <= 0.8
    # The onset frame, 4 more to reach vad_start_ms (80 ms), then stop_ms.
    assert 170 <= stopped["barge_ms"] <= 280
    [(clear_at, _)] = heard.events("clear")
    first_media_after_clear = [t for t, m in heard.events("media") if t > clear_at]
    answers = bot.events("answer-started")
    assert [a["n"] for a in answers] == [1, 2]
    assert not first_media_after_clear or first_media_after_clear[0] >= answers[1]["time"]
    assert bot.events("answer-finished") == []  # answer 1 cut, answer 2 cut by our hang-up


async def test_plain_bot_script_reports_on_stdout():
    with plain_bot("answer", latency=0.2, silence_ms=200, answer_secs=0.2) as bot:
        assert bot.uri.startswith("ws://127.0.0.1:") and bot.uri.endswith("/ws")
        heard = await twilio_call(bot.uri, ("tone", 0.3), ("silence", 0.8))
        await asyncio.to_thread(bot.wait_for, "closed")
    assert len(heard.events("media")) == 10
    [answer] = bot.reports(conn=1, event="answer-started")
    assert 380 <= answer["response_ms"] <= 460
