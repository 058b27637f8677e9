"""The browser phone's server (phone.server, phone.call), driven by a page written in Python.

The "page" here speaks the page's protocol over a real WebSocket: it streams
PCM in real time, presses keys, hangs up, and reads what the server sends.
The far end is the real Pipecat phone bot (``support/phone_bot.py``:
Pipecat's ``FastAPIWebsocketTransport`` and its own carrier serializers),
which reports what it heard. The browser itself is in ``test_phone_browser.py``.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from pipecat_wsclient.audio.wav import read_wav
from pipecat_wsclient.caller.call import bundled_clip
from pipecat_wsclient.phone import PhoneOptions, PhoneServer
from support.processes import PhoneBot, phone_bot

pytestmark = pytest.mark.slow  # phone bots in subprocesses, real-time calls

RATE = 8000
CHUNK = 2 * RATE * 20 // 1000


@pytest.fixture(scope="module")
def bot() -> PhoneBot:
    with phone_bot() as running:
        yield running


class Page:
    """A page in Python: what the server sent, and a microphone streaming in real time."""

    def __init__(self, websocket):
        self.ws = websocket
        self.messages: list[dict] = []
        self.audio = bytearray()
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.audio += message
                else:
                    self.messages.append(json.loads(message))
        finally:
            self.closed.set()

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    async def speak(self, pcm: bytes, *, during=None) -> None:
        """Send ``pcm`` 20 ms at a time in real time; ``during(i)`` after chunk ``i``."""
        start = time.monotonic()
        for n, i in enumerate(range(0, len(pcm), CHUNK)):
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            chunk = pcm[i : i + CHUNK]
            await self.ws.send(chunk + bytes(CHUNK - len(chunk)))
            if during is not None:
                await during(n)

    async def wait_for(self, kind: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while not self.of(kind):
            assert time.monotonic() < deadline, f"no {kind!r} message: {self.messages[-5:]}"
            await asyncio.sleep(0.02)
        return self.of(kind)[-1]


def get(url: str, host: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def call_url(server: PhoneServer) -> str:
    return server.address("/call").replace("http://", "ws://")


def printed_address(line: str) -> tuple[str, str]:
    """The server's base address and the token, from the command's ``Phone page:`` line."""
    url = line.split()[-1]
    base, _, query = url.partition("?")
    assert query.startswith("token="), line
    return base, query.removeprefix("token=")


def bot_conn(bot: PhoneBot, before: int) -> int:
    conns = [r["conn"] for r in bot.reports(event="connected") if r["conn"] > before]
    assert conns, "the bot got no call"
    return conns[0]


def last_conn(bot: PhoneBot) -> int:
    return max((r["conn"] for r in bot.reports(event="connected")), default=0)


async def wait_report(bot: PhoneBot, conn: int, event: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while not bot.reports(conn=conn, event=event):
        assert time.monotonic() < deadline, f"the bot did not report {event!r}"
        await asyncio.sleep(0.05)
    return bot.reports(conn=conn, event=event)[-1]


def best_lag(reference: np.ndarray, recording: np.ndarray) -> tuple[float, int]:
    """Normalized cross-correlation peak of ``reference`` inside ``recording``, and its lag."""
    ref = reference - reference.mean()
    corr = np.correlate(recording, ref, mode="valid")
    energy = np.sqrt(np.convolve(recording**2, np.ones(len(ref)), mode="valid"))
    score = corr / (np.linalg.norm(ref) * np.maximum(energy, 1e-9))
    lag = int(np.argmax(score))
    return float(score[lag]), lag


def read_mono(path: str | Path, rate: int) -> np.ndarray:
    return np.frombuffer(read_wav(path, rate), dtype="<i2").astype(np.float64)


# -- HTTP ---------------------------------------------------------------------


async def test_the_page_its_files_and_config_are_served_and_nothing_else(tmp_path) -> None:
    options = PhoneOptions("ws://127.0.0.1:9/ws?token=s3cret", protocol="telnyx")
    async with PhoneServer(options) as server:
        base = server.base_url
        status, kind, body = await asyncio.to_thread(get, server.url)
        assert (status, kind) == (200, "text/html") and b'id="call"' in body
        for name, kind in [("phone.js", "javascript"), ("worklets.js", "javascript")]:
            status, got, _ = await asyncio.to_thread(get, base + name)
            assert status == 200 and kind in got
        status, kind, body = await asyncio.to_thread(get, server.address("/config.json"))
        config = json.loads(body)
        assert config == {
            "protocol": "telnyx",
            "uri": "ws://127.0.0.1:9/ws?token=***",
            "sample_rate": 8000,
            "chunk_ms": 20,
        }
        for path in ("nope", "files/1/recording.wav", "files/../config.json", "static/index.html"):
            status, _, _ = await asyncio.to_thread(get, server.address(path))
            assert status == 404, path
        # DNS rebinding: a request for another host name is refused.
        status, _, body = await asyncio.to_thread(get, server.url, "evil.example:80")
        assert status == 403
        # Another web site's page cannot dial.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(call_url(server), origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403


# -- calls ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["twilio", "exotel"])
async def test_a_call_bridges_the_page_and_the_bot_both_ways(bot, tmp_path, protocol) -> None:
    before = last_conn(bot)
    record = tmp_path / "bot-heard.wav"
    uri = f"{bot.uri}?bot=answer&delay=0.3&record={record}"
    clip = read_wav(bundled_clip(), RATE)
    async with PhoneServer(PhoneOptions(uri, protocol=protocol), folder=tmp_path) as server:
        async with connect(call_url(server), origin=server.base_url.rstrip("/")) as ws:
            page = Page(ws)
            await page.wait_for("state")

            async def press(n: int) -> None:
                if n == 10:
                    await ws.send(json.dumps({"type": "dtmf", "digit": "7"}))

            await page.speak(clip + bytes(RATE * 2 * 3), during=press)
            await ws.send(json.dumps({"type": "hangup"}))
            ended = await page.wait_for("ended")
            await asyncio.wait_for(page.closed.wait(), 10)
        conn = bot_conn(bot, before)
        await wait_report(bot, conn, "recorded")

        # The states, in order, and the ending in words.
        states = [m["state"] for m in page.of("state")]
        assert states == ["connecting", "connected", "ended"]
        assert page.of("state")[-1]["detail"] == "you hung up"
        # The bot heard the clip (16 kHz at the bot, through the carrier's 8 kHz).
        score, _ = best_lag(read_mono(bundled_clip(), 16000), read_mono(record, 16000))
        assert score > 0.9
        # The key reached the bot's pipeline as an InputDTMFFrame.
        assert [r["digit"] for r in bot.reports(conn=conn, event="dtmf")] == ["7"]
        assert any(e["kind"] == "dtmf" and "7" in e["detail"] for e in page.of("event"))
        # The page got the bot's answers as audio: two answers of about 3 s.
        audio = np.frombuffer(bytes(page.audio), dtype="<i2")
        voiced = np.abs(audio.astype(np.float64)) > 1000
        assert voiced.sum() / RATE > 1.0
        # Each question's turn was reported live, answered, in the bot's range.
        answered = {m["n"]: m["latency_ms"] for m in page.of("turn") if m["latency_ms"]}
        assert len(answered) >= 2
        for latency in answered.values():
            assert 300 <= latency <= 1800
        # The files the page offers.
        status, kind, body = await asyncio.to_thread(get, server.address(ended["recording"]))
        assert status == 200 and kind == "audio/x-wav"
        with wave.open(io.BytesIO(body)) as wav:
            assert wav.getnchannels() == 2 and wav.getframerate() == RATE
        status, kind, body = await asyncio.to_thread(get, server.address(ended["timeline"]))
        assert status == 200 and kind == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
        assert ended["summary"]["turns"]


async def test_bad_messages_from_the_page_are_named_and_the_call_goes_on(bot, tmp_path) -> None:
    before = last_conn(bot)
    async with PhoneServer(PhoneOptions(bot.uri), folder=tmp_path) as server:
        async with connect(call_url(server)) as ws:
            page = Page(ws)
            await page.wait_for("state")
            for bad in [
                "not json",
                json.dumps({"type": "fly"}),
                json.dumps({"type": "dtmf"}),
                json.dumps({"type": "dtmf", "digit": "x"}),
                json.dumps([1]),
                b"\x01",
            ]:
                await ws.send(bad)
            await page.speak(bytes(CHUNK * 25))
            await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
            await page.speak(bytes(CHUNK * 25))
            await ws.send(json.dumps({"type": "hangup"}))
            await page.wait_for("ended")
    infos = [e["detail"] for e in page.of("event") if e["kind"] == "info"]
    assert len(infos) == 6
    assert "not JSON" in infos[0] and "'fly'" in infos[1] and "'x'" in infos[3]
    assert "1 bytes" in infos[5]
    conn = bot_conn(bot, before)
    assert [r["digit"] for r in bot.reports(conn=conn, event="dtmf")] == ["#"]


async def test_closing_the_page_hangs_up_at_the_bot(bot, tmp_path) -> None:
    before = last_conn(bot)
    async with PhoneServer(PhoneOptions(bot.uri), folder=tmp_path) as server:
        async with connect(call_url(server)) as ws:
            page = Page(ws)
            await page.wait_for("state")
            while "connected" not in [m["state"] for m in page.of("state")]:
                await asyncio.sleep(0.02)
            await page.speak(bytes(CHUNK * 10))
        closed_at = time.monotonic()
        conn = bot_conn(bot, before)
        await wait_report(bot, conn, "disconnected", timeout=10)
        assert time.monotonic() - closed_at < 5
        for _ in range(100):
            if server.results:
                break
            await asyncio.sleep(0.05)
        (result,) = server.results.values()
        # The page said nothing, so the bot never answered: a call that heard
        # nothing (exit 8, saying what to check), ended by us, not a failure.
        assert result.exit_code == 8 and "heard nothing" in (result.error or "")
        assert result.end["by"] == "caller" and result.end["code"] == 1000


async def test_a_bot_that_refuses_shows_the_http_status(tmp_path) -> None:
    def refuse(connection, request):
        return connection.respond(401, "no token\n")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as bot:
        port = bot.sockets[0].getsockname()[1]
        options = PhoneOptions(f"ws://127.0.0.1:{port}/ws", protocol="twilio")
        async with PhoneServer(options, folder=tmp_path) as server:
            async with connect(call_url(server)) as ws:
                page = Page(ws)
                ended = await page.wait_for("ended", timeout=15)
                await asyncio.wait_for(page.closed.wait(), 10)
    failed = [m for m in page.of("state") if m["state"] == "failed"]
    assert failed and "401" in failed[0]["detail"]
    assert ended["summary"]["exit_code"] == 4


async def test_a_page_that_stops_reading_does_not_stall_the_call(
    bot, tmp_path, monkeypatch
) -> None:
    """The bot's audio for a page that does not read is dropped, counted; the call ends.

    Invariant: what the page finally receives plus what the server counts as
    not delivered is all the bot audio the call heard, to the byte.
    """
    import pipecat_wsclient.phone.link as phone_link
    import pipecat_wsclient.phone.server as phone_server

    monkeypatch.setattr(phone_link, "PAGE_AUDIO_SECS", 0.2)
    monkeypatch.setattr(phone_server, "FLUSH_SECS", 0.5)
    # The echo bot: 15 s of the page's audio come back, more than the buffers on the way hold.
    clip = read_wav(bundled_clip(), RATE)
    clip = (clip * 3)[: 15 * 2 * RATE]
    async with PhoneServer(PhoneOptions(bot.uri), folder=tmp_path) as server:
        async with connect(call_url(server), max_queue=1) as ws:
            ws.transport.pause_reading()  # the page stops reading
            start = time.monotonic()
            for i in range(0, len(clip), CHUNK):
                await ws.send(clip[i : i + CHUNK])
                await asyncio.sleep(0.02)
            await ws.send(json.dumps({"type": "hangup"}))
            for _ in range(400):
                if server.results:
                    break
                await asyncio.sleep(0.05)
            assert server.results, "the call did not end"
            assert time.monotonic() - start < 30
            while 1 not in server.undelivered:  # the server gave up on the page's queue
                await asyncio.sleep(0.05)
            ws.transport.resume_reading()
            page = Page(ws)
            await asyncio.wait_for(page.closed.wait(), 30)
        heard = round(server.results[1].heard_secs * 2 * RATE)
        assert heard > 10 * 2 * RATE  # the bot echoed
        assert len(page.audio) + server.undelivered[1] == heard


# -- the command ----------------------------------------------------------------


def test_the_command_prints_the_page_address_and_stops_on_ctrl_c(bot, tmp_path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipecat_wsclient",
            "phone",
            bot.uri,
            "--no-browser",
            "--protocol",
            "telnyx",
            "--carrier",
            "call_control_id=abc",
            "--param",
            "user=42",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Phone page: http://127.0.0.1:") and "/?token=" in line
        base, token = printed_address(line)
        status, _, body = get(f"{base}config.json?token={token}")
        assert status == 200 and json.loads(body)["protocol"] == "telnyx"
        before = last_conn(bot)

        async def dial() -> None:
            async with connect(f"{base.replace('http://', 'ws://')}call?token={token}") as ws:
                page = Page(ws)
                await page.speak(bytes(CHUNK * 25))
                # The echo heard (on a loaded machine it can take longer than 0.5 s).
                deadline = time.monotonic() + 10
                while not page.audio and time.monotonic() < deadline:
                    await page.speak(bytes(CHUNK * 5))
                await ws.send(json.dumps({"type": "hangup"}))
                await page.wait_for("ended")

        asyncio.run(dial())
        ended = proc.stdout.readline()
        assert ended.startswith("call 1: ended"), ended
        (start,) = bot.reports(conn=bot_conn(bot, before), event="start")
        assert start["provider"] == "telnyx"
        assert start["call_data"]["call_id"] == "abc"
        handshake = json.dumps(bot.reports(conn=start["conn"], event="handshake"))
        assert '"user": "42"' in handshake
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_the_command_names_a_wrong_carrier_option() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipecat_wsclient",
            "phone",
            "ws://127.0.0.1:9/ws",
            "--no-browser",
            "--carrier",
            "nonsense=1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--carrier nonsense: twilio takes stream_sid, call_sid, account_sid" in proc.stderr


async def test_by_default_a_dropped_call_is_over_as_a_carriers_is(tmp_path) -> None:
    """No redial unless asked: the bot's 1011 ends the call, named on the page."""
    connections = []

    async def crashing(ws) -> None:
        connections.append(ws)
        await asyncio.sleep(0.5)
        await ws.close(1011, "bot crashed")

    async with serve(crashing, "127.0.0.1", 0) as bot_server:
        port = bot_server.sockets[0].getsockname()[1]
        options = PhoneOptions(f"ws://127.0.0.1:{port}/ws", protocol="twilio")
        async with PhoneServer(options, folder=tmp_path) as server:
            async with connect(call_url(server)) as ws:
                page = Page(ws)
                await page.speak(bytes(CHUNK * 50))
                ended = await page.wait_for("ended")
    states = [m["state"] for m in page.of("state")]
    assert states == ["connecting", "connected", "failed"]
    assert "1011" in page.of("state")[-1]["detail"]
    assert len(connections) == 1
    assert ended["summary"]["exit_code"] == 7
    assert ended["summary"]["end"] == {"by": "bot", "code": 1011, "reason": "bot crashed"}


async def test_a_dropped_connection_shows_reconnecting_then_connected(tmp_path) -> None:
    """With --reconnect, the bot's first connection fails (1011): the page sees the redial."""
    connections = []

    async def flaky(ws) -> None:
        connections.append(ws)
        if len(connections) == 1:
            await asyncio.sleep(1.0)
            await ws.close(1011, "bot crashed")
            return
        async for _ in ws:
            pass

    async with serve(flaky, "127.0.0.1", 0) as bot_server:
        port = bot_server.sockets[0].getsockname()[1]
        options = PhoneOptions(f"ws://127.0.0.1:{port}/ws", protocol="twilio", reconnect=True)
        async with PhoneServer(options, folder=tmp_path) as server:
            async with connect(call_url(server)) as ws:
                page = Page(ws)
                await page.speak(bytes(CHUNK * 150))  # 3 s
                # Hung up once redialed: a drop after the hang-up is not redialed
                # (the call is ending; issue 24).
                for _ in range(100):
                    if [m["state"] for m in page.of("state")].count("connected") == 2:
                        break
                    await asyncio.sleep(0.1)
                await ws.send(json.dumps({"type": "hangup"}))
                await page.wait_for("ended")
    states = [m["state"] for m in page.of("state")]
    assert states == ["connecting", "connected", "reconnecting", "connected", "ended"]
    assert "1011" in page.of("state")[2]["detail"]
    assert [e["kind"] for e in page.of("event")].count("reconnect") == 1
    assert len(connections) == 2
    assert page.of("ended")[0]["summary"]["reconnects"] == 1


def test_the_command_opens_the_page_in_the_browser(tmp_path) -> None:
    """Without --no-browser, the page opens in the user's browser ($BROWSER).

    Through a local file that redirects to the page: the token is not on the
    browser's command line, which any local user can read (``ps``). The file
    is the owner's only, and gone when the command ends.
    """
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BROWSER": f"{browser} %s"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipecat_wsclient", "phone", "ws://127.0.0.1:9/ws"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = proc.stdout.readline().split()[-1]
        deadline = time.monotonic() + 20
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        argument = opened.read_text().strip()
        assert argument.startswith("file:///") and "token" not in argument
        launcher = Path(urllib.request.url2pathname(argument.removeprefix("file://")))
        assert html.escape(url) in launcher.read_text()
        assert launcher.stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert not launcher.exists()


def test_ctrl_c_during_a_call_hangs_up_at_the_bot_and_exits(bot) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipecat_wsclient", "phone", bot.uri, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    before = last_conn(bot)
    base, token = printed_address(proc.stdout.readline())

    async def talk_until_stopped() -> None:
        async with connect(f"{base.replace('http://', 'ws://')}call?token={token}") as ws:
            page = Page(ws)
            while "connected" not in [m["state"] for m in page.of("state")]:
                await asyncio.sleep(0.02)
            await page.speak(bytes(CHUNK * 10))
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(page.closed.wait(), 15)

    try:
        asyncio.run(talk_until_stopped())
        stopped_at = time.monotonic()
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    conn = bot_conn(bot, before)
    deadline = stopped_at + 10
    while not bot.reports(conn=conn, event="disconnected") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bot.reports(conn=conn, event="disconnected"), "the bot was never hung up on"
