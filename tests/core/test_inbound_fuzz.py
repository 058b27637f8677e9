"""Every inbound message is delivered, ignored or counted, in a real pipeline (issue 13).

The invariant, for each protocol (Pipecat's Protobuf frames, the default; raw
PCM; Twilio, Telnyx, Plivo, Exotel, Vonage; Asterisk with plain-text and JSON
control messages, before and after ``MEDIA_START``): every message the
session receives has exactly one outcome in the input
(``WebsocketClientInputTransport._decode``, then ``deliver``):

- one frame pushed into the pipeline (audio, a transport message, text, an
  interruption, DTMF; audio of messages received together may be pushed as
  one frame, which must then be exactly their audio in order), or
- ignored, counted in ``stats.messages_ignored``: the serializer returned no
  frame (a carrier's media, mark or clear, which its playback clock acts on;
  an Asterisk event other than ``DTMF_END``; media the resampler holds for
  now), or audio with no samples, or
- counted in ``stats.decode_errors``: ``deserialize`` raised (anything), or
  the frame cannot be delivered (audio with ``sample_rate`` 0, partial samples);

no exception gets out of it (nothing reaches the session's "error handling a
received message" traceback), no log record has a traceback, WARNING and
ERROR lines come at a bounded rate (each source is rate-limited, not one line
per bad message), the pipeline keeps running with no ``ErrorFrame``,
``stats.messages_in`` counts every message sent, ``stats.audio_secs_received``
is the audio pushed, and a valid message sent after each batch still
arrives, last:

- Protobuf, raw: audio, which must be the last frame pushed;
- carriers: a clear, audio and a mark: the audio (as a fresh serializer
  decodes it, its resampler's tail included) must be the last audio the
  playback clock delivers, and the mark must be echoed;
- Asterisk after ``MEDIA_START``: a ``MEDIA_START`` (slin16) and audio, which
  must be the last frame pushed; before: ``DTMF_END``, which must arrive.

For the default serializer, Pipecat's ``ProtobufFrameSerializer`` is not
ours: whatever its ``deserialize`` does (a frame, None, ``DecodeError``,
``TypeError`` for text, ``ZeroDivisionError`` for audio with no channels;
``tests/protocols/test_protocols_fuzz.py`` documents it) the input must count it.

Messages go from a real WebSocket server on 127.0.0.1 through a real
transport into a real pipeline. One pipeline per protocol runs all the
examples: the test is a plain function driving the pipeline's event loop;
each hypothesis example is a batch of up to 12 messages followed by the valid
messages, and waits for those to arrive, so a failure belongs to one batch
(except the log rate, checked on the run so far: the plain regression tests
below pin each cause). The carriers' batches take longer (the audio after the
clear arrives once the resampler's tail is flushed, 60 ms after the last
media), so they get fewer.

Budget (``tests/budget.py``): ``ci`` runs 80 batches per protocol (50 for
the carriers): 730 batches, about 4,800 messages, in about 30 s on this
2-core machine. ``long`` runs 3,000 (800): 22,000 batches, about 160,000
messages, in about 10.5 minutes (35 to 67 s per protocol, under the 120 s
test timeout). Each defect the fuzzing found has a plain regression test at
the end of the file (and in ``tests/protocols/test_protocols_fuzz.py`` and
``tests/core/test_protobuf_audio.py`` for the serializers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pipecat.frames.protobufs.frames_pb2 as frame_protos
import pytest
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, InputDTMFFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from budget import budget
from harness import RATE, RunningPipeline, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.pacing import pcm_duration
from pipecat_wsclient.protobuf_audio import encode_audio
from pipecat_wsclient.protocols import (
    AsteriskSerializer,
    ExotelCarrierSerializer,
    PlivoCarrierSerializer,
    RawPCMSerializer,
    TelnyxCarrierSerializer,
    TwilioCarrierSerializer,
    VonageCarrierSerializer,
)
from pipecat_wsclient.protocols.asterisk import asterisk_params
from pipecat_wsclient.protocols.carrier import CarrierSerializer
from pipecat_wsclient.protocols.json_carrier import JsonCarrierSerializer
from support.fake_asterisk import FakeAsterisk
from support.inbound_messages import (
    asterisk_messages,
    asterisk_messages_before_start,
    deep_messages,
    messages_any,
    protobuf_messages,
    raw_messages,
)
from support.restartable import RestartableServer

BATCH = 12
"""Most messages in one batch."""

WARNINGS_PER_INTERVAL = 6
"""Most WARNING and ERROR lines per 5 s (the log throttles' interval) in a run:
each rate-limited source logs once per interval, and there are fewer than this."""

WAIT_SECS = 10.0
"""How long a batch may take to go through (it takes milliseconds)."""


# -- what the input did with each message --------------------------------------------


@dataclass
class Handled:
    """One message the input decoded (``_decode``) and what became of it."""

    message: str | bytes
    decode_errors: int = 0
    ignored: int = 0
    frame: Frame | None = None  # what it decoded to
    delivered: bool = False
    pushed: list[Frame] = field(default_factory=list)
    escaped: BaseException | None = None

    @property
    def outcomes(self) -> int:
        return self.decode_errors + self.ignored + len(self.pushed)


_HANDLING: contextvars.ContextVar[Handled | None] = contextvars.ContextVar("handling", default=None)


@dataclass
class Pushed:
    """A frame the input pushed downstream, and the message it came from (None: a
    protocol's own task delivered it, e.g. a carrier's playback clock); for
    audio joined from several messages received together, the last of them."""

    frame: Frame
    handled: Handled | None


def watch_input(transport: WebsocketClientTransport, handled: list[Handled], pushed: list[Pushed]):
    """Record each message the input decodes, and every frame it delivers and pushes.

    The input's ``_decode``, ``deliver`` and ``push_frame`` are wrapped on
    the instance (their behaviour is unchanged). A frame delivered is
    traced to the message it was decoded from; audio of several messages
    received together and joined into one frame (``coalesce_audio``) is
    traced to each of them, and must be exactly their audio, in order.
    """
    source = transport.input()
    stats = transport.session.stats
    decode = source._decode
    deliver = source.deliver
    push = source.push_frame
    owners: dict[int, Handled] = {}

    async def decode_message(message: str | bytes) -> Frame | None:
        record = Handled(message)
        errors, ignored = stats.decode_errors, stats.messages_ignored
        try:
            frame = await decode(message)
        except BaseException as e:
            record.escaped = e
            raise
        finally:
            record.decode_errors = stats.decode_errors - errors
            record.ignored = stats.messages_ignored - ignored
            handled.append(record)
        if frame is not None:
            record.frame = frame
            owners[id(frame)] = record
        return frame

    def owners_of(frame: Frame) -> list[Handled]:
        record = owners.pop(id(frame), None)
        if record is not None and record.frame is frame:
            return [record]
        if not isinstance(frame, InputAudioRawFrame):
            return []
        # Joined audio: the undelivered decoded audio, oldest first, makes it up.
        parts: list[Handled] = []
        size = 0
        for h in handled:
            if (
                h.delivered
                or not isinstance(h.frame, InputAudioRawFrame)
                or size >= len(frame.audio)
            ):
                continue
            parts.append(h)
            size += len(h.frame.audio)
        if not parts:
            return []  # a protocol's own task delivers it (a carrier's playback clock)
        assert len(parts) > 1
        assert b"".join(h.frame.audio for h in parts) == frame.audio, "joined audio differs"  # type: ignore[union-attr]
        for h in parts:
            owners.pop(id(h.frame), None)
        return parts

    async def deliver_frame(frame: Frame) -> None:
        parts = owners_of(frame)
        for h in parts:
            h.delivered = True
        record = parts[-1] if parts else None
        errors = stats.decode_errors
        token = _HANDLING.set(record)
        try:
            await deliver(frame)
        finally:
            _HANDLING.reset(token)
            if record is not None:
                record.decode_errors += stats.decode_errors - errors
                for h in parts[:-1]:
                    h.pushed.extend(record.pushed)

    async def push_frame(frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        if direction == FrameDirection.DOWNSTREAM:
            record = _HANDLING.get()
            if record is not None:
                record.pushed.append(frame)
            pushed.append(Pushed(frame, record))
        await push(frame, direction)

    source._decode = decode_message  # type: ignore[method-assign]
    source.deliver = deliver_frame  # type: ignore[method-assign]
    source.push_frame = push_frame  # type: ignore[method-assign]


# -- the protocols ------------------------------------------------------------------------


@dataclass
class Valid:
    """The valid messages sent after a batch, and what must arrive for them."""

    messages: list[str | bytes]
    audio: bytes = b""  # the audio they must deliver: the last audio pushed
    from_message: bool = True  # pushed by the last message (else by a playback clock)
    mark: str | None = None  # a mark name that must be echoed
    dtmf: str | None = None  # a DTMF digit that must arrive


@dataclass(frozen=True)
class Protocol:
    name: str
    serializer: Callable[[], FrameSerializer]
    messages: st.SearchStrategy
    valid: Callable[[FrameSerializer, int], Awaitable[Valid]]
    asterisk: str | None = None  # the channel's control format, for a fake Asterisk


async def valid_protobuf(_serializer: FrameSerializer, n: int) -> Valid:
    audio = pcm(0.02, seed=n)
    return Valid([encode_audio(audio, RATE, 1)], audio=audio)


async def valid_raw(_serializer: FrameSerializer, n: int) -> Valid:
    audio = pcm(0.02, seed=n)
    return Valid([audio], audio=audio)


def carrier_valid_messages(serializer: CarrierSerializer, n: int) -> tuple[list[str | bytes], str]:
    """A clear, 20 ms of audio and a mark, in the carrier's format."""
    name = f"fuzz-{n}"
    if isinstance(serializer, VonageCarrierSerializer):
        audio = pcm(0.02, rate=serializer.sample_rate, seed=n)
        notify = {"action": "notify", "payload": {"name": name}}
        return [json.dumps({"action": "clear"}), audio, json.dumps(notify)], name
    assert isinstance(serializer, JsonCarrierSerializer)
    audio = pcm(0.02, rate=8000, seed=n)
    if not isinstance(serializer, ExotelCarrierSerializer):
        audio = audio[: len(audio) // 2]  # mu-law: a byte a sample
    media: dict[str, Any] = {"payload": base64.b64encode(audio).decode()}
    if isinstance(serializer, PlivoCarrierSerializer):
        media.update(contentType="audio/x-mulaw", sampleRate=8000)
        mark = {"event": "checkpoint", "name": name}
    else:
        mark = {"event": "mark", "mark": {"name": name}}
    return [
        json.dumps({"event": serializer.clear_event}),
        json.dumps({"event": serializer.media_event, "media": media}),
        json.dumps(mark),
    ], name


async def valid_carrier(serializer: FrameSerializer, n: int) -> Valid:
    assert isinstance(serializer, CarrierSerializer)
    messages, mark = carrier_valid_messages(serializer, n)
    # What a fresh serializer makes of the audio: the resampler starts over at a clear.
    fresh = type(serializer)()
    await fresh.setup(SimpleNamespace(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE))
    assert await fresh.deserialize(messages[1]) is None
    queued = b"".join(i for kind, i in fresh.playback._queue if kind == "audio")  # type: ignore[misc]
    audio = queued + await fresh.flush_input()
    return Valid(messages, audio=audio, from_message=False, mark=mark)


async def valid_asterisk(serializer: FrameSerializer, n: int) -> Valid:
    assert isinstance(serializer, AsteriskSerializer)
    audio = pcm(0.02, seed=n)
    start = FakeAsterisk(format="slin16", control_format=serializer.control_format)
    return Valid([start.format_event("MEDIA_START"), audio], audio=audio)


async def valid_before_start(serializer: FrameSerializer, n: int) -> Valid:
    assert isinstance(serializer, AsteriskSerializer)
    assert serializer.codec is None  # still before MEDIA_START
    digit = "0123456789*#"[n % 12]
    if n % 2:
        return Valid([json.dumps({"event": "DTMF_END", "digit": digit})], dtmf=digit)
    return Valid([f"DTMF_END digit:{digit}"], dtmf=digit)


carrier_messages = messages_any | deep_messages
PROTOCOLS = {
    p.name: p
    for p in [
        Protocol("protobuf", ProtobufFrameSerializer, protobuf_messages, valid_protobuf),
        Protocol("raw", RawPCMSerializer, raw_messages, valid_raw),
        *(
            Protocol(name, cls, carrier_messages, valid_carrier)
            for name, cls in [
                ("twilio", TwilioCarrierSerializer),
                ("telnyx", TelnyxCarrierSerializer),
                ("plivo", PlivoCarrierSerializer),
                ("exotel", ExotelCarrierSerializer),
                ("vonage", VonageCarrierSerializer),
            ]
        ),
        *(
            Protocol(
                f"asterisk-{control}-after-start",
                AsteriskSerializer,
                asterisk_messages,
                valid_asterisk,
                asterisk=control,
            )
            for control in ("plain-text", "json")
        ),
        *(
            Protocol(
                f"asterisk-{control}-before-start",
                lambda control=control: AsteriskSerializer(control_format=control),
                asterisk_messages_before_start,
                valid_before_start,
            )
            for control in ("plain-text", "json")
        ),
    ]
}


def audio_secs(pushed: list[Pushed]) -> float:
    """Seconds of audio in the frames pushed."""
    return sum(
        pcm_duration(len(p.frame.audio), p.frame.sample_rate, p.frame.num_channels)
        for p in pushed
        if isinstance(p.frame, InputAudioRawFrame)
    )


def same_audio(got: bytes, want: bytes) -> bool:
    """The same 16-bit PCM, give or take a few units: soxr's resampling is not exactly
    deterministic (two fresh streams fed the same samples can differ by 2)."""
    if len(got) != len(want):
        return False
    difference = np.frombuffer(got, np.int16).astype(np.int32) - np.frombuffer(want, np.int16)
    return len(got) == 0 or int(np.abs(difference).max()) <= 8


# -- one pipeline per protocol -------------------------------------------------------------


class Rig:
    """A real pipeline with our transport, connected to a real local server, on its own loop.

    ``send_batch`` runs the loop until the batch and its valid messages have
    gone through, then checks the invariant; between batches the loop (the
    pipeline and the server with it) waits.
    """

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.loop = asyncio.new_event_loop()
        self.handled: list[Handled] = []
        self.pushed: list[Pushed] = []
        self.pushed_secs = 0.0  # audio pushed before the current batch
        self.records: list[dict[str, Any]] = []
        self.batches = 0
        self.messages = 0
        self.created = self.started = time.monotonic()
        self._stack = contextlib.AsyncExitStack()
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        self.serializer = serializer = self.protocol.serializer()
        if self.protocol.asterisk is not None:
            fake = FakeAsterisk(format="slin16", control_format=self.protocol.asterisk)
            self.fake: FakeAsterisk | None = await self._stack.enter_async_context(fake)
            self.server: RestartableServer | None = None
            uri = fake.uri
        else:
            self.fake = None
            self.server = await self._stack.enter_async_context(RestartableServer())
            uri = self.server.uri
        if isinstance(serializer, AsteriskSerializer):
            params = asterisk_params(serializer, audio_out_end_silence_secs=0)
        else:
            params = client_params(serializer=serializer)
        self.transport = transport = WebsocketClientTransport(uri, params)
        watch_input(transport, self.handled, self.pushed)
        sink = logger.add(lambda m: self.records.append(m.record), level="WARNING")
        self._stack.callback(logger.remove, sink)
        self.pipeline: RunningPipeline = await self._stack.enter_async_context(
            run_pipeline(transport)
        )
        await wait_for(lambda: transport.input()._ready and transport.session.is_connected, 10)
        if self.fake is not None:
            await wait_for(lambda: serializer.codec is not None, 10)  # type: ignore[attr-defined]
        self.started = time.monotonic()

    def close(self) -> None:
        async def stop():
            if not self.pipeline.task.done():
                await self.pipeline.end()
            if self.fake is not None:  # Our HANGUP: let it close the socket.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.fake.closed.wait(), 2)
            await self._stack.aclose()

        try:
            self.loop.run_until_complete(stop())
        finally:
            self.loop.close()
        logger.info(
            f"{self.protocol.name}: {self.batches} batches, {self.messages} messages "
            f"in {time.monotonic() - self.created:.1f} s"
        )

    async def _send(self, message: str | bytes) -> None:
        if self.fake is not None:
            await self.fake.send_message(message)
        else:
            assert self.server is not None
            await self.server.send_to_clients(message)

    def _received(self) -> list[str | bytes]:
        if self.fake is not None:
            return [text for _, text in self.fake.texts_in]
        assert self.server is not None
        return self.server.messages

    def send_batch(self, batch: list[str | bytes]) -> None:
        self.loop.run_until_complete(self._send_batch(batch))

    async def _send_batch(self, batch: list[str | bytes]) -> None:
        self.batches += 1
        valid = await self.protocol.valid(self.serializer, self.batches)
        stats = self.transport.session.stats
        # What came before was checked: keep only the audio total (long runs stay linear).
        self.pushed_secs += audio_secs(self.pushed)
        self.handled.clear()
        self.pushed.clear()
        first_record, first_received = len(self.records), len(self._received())
        messages_in = stats.messages_in
        sent = [*batch, *valid.messages]
        for message in sent:
            await self._send(message)
        self.messages += len(sent)

        def arrived() -> bool:
            if len(self.handled) < len(sent):
                return False
            after = [p.frame for p in self.pushed]
            if valid.dtmf is not None:
                dtmf = [f for f in after if isinstance(f, InputDTMFFrame)]
                return bool(dtmf) and dtmf[-1].button.value == valid.dtmf
            mark = f'"{valid.mark}"'
            echoes = self._received()[first_received:]
            if valid.mark is not None and not any(mark in str(m) for m in echoes):
                return False
            played = b"".join(f.audio for f in after if isinstance(f, InputAudioRawFrame))
            return valid.audio == b"" or same_audio(played[-len(valid.audio) :], valid.audio)

        try:
            await wait_for(arrived, WAIT_SECS)
        except AssertionError:
            after = [(p.frame.name, len(getattr(p.frame, "audio", b""))) for p in self.pushed]
            raise AssertionError(
                f"the valid messages did not arrive: {len(self.handled)} of {len(sent)} "
                f"messages handled, pushed since (name, audio bytes): {after}, expected "
                f"{len(valid.audio)} bytes of audio, mark {valid.mark}, DTMF {valid.dtmf}"
            ) from None
        self.check(sent, stats.messages_in - messages_in, valid, first_record)

    def check(self, sent: list[str | bytes], received: int, valid: Valid, first_record: int):
        """The invariant, for the batch just sent (``sent``, valid messages included)."""
        handled = self.handled
        # Every message received, handled once, in order, with one outcome, nothing raised.
        assert received == len(sent)
        assert [h.message for h in handled] == sent
        for h in handled:
            assert h.escaped is None, f"{h.escaped!r} escaped for {h.message!r}"
            assert h.outcomes == 1, (
                f"{h.message!r}: {h.decode_errors} decode errors, {h.ignored} ignored, "
                f"pushed {h.pushed}"
            )
        # The valid messages arrived, last.
        audio = [p for p in self.pushed if isinstance(p.frame, InputAudioRawFrame)]
        if valid.audio and valid.from_message:
            # Protobuf, raw, Asterisk: the frame the last message pushed, last.
            # (joined with audio received with it, if any: then its tail).
            assert handled[-1].pushed and handled[-1].pushed[-1] is audio[-1].frame
            assert audio[-1].frame.audio.endswith(valid.audio)  # type: ignore[attr-defined]
        elif valid.audio:
            # A carrier: what its playback clock delivered last (waited for above).
            assert all(p.handled is None for p in audio)
        # The pipeline runs on, nothing fatal, audio counted as pushed.
        assert not self.pipeline.task.done()
        assert not self.pipeline.errors
        pushed_secs = self.pushed_secs + audio_secs(self.pushed)
        stats = self.transport.session.stats
        assert stats.audio_secs_received == pytest.approx(pushed_secs, abs=1e-6)
        # No traceback; WARNING and ERROR lines at a bounded rate, not one per bad message.
        for record in self.records[first_record:]:
            assert record["exception"] is None, record["message"]
            assert "Traceback" not in record["message"], record["message"]
        elapsed = time.monotonic() - self.started
        assert len(self.records) <= WARNINGS_PER_INTERVAL * (1 + int(elapsed / 5)), [
            r["message"][:200] for r in self.records
        ]


def running(name: str):
    rig = Rig(PROTOCOLS[name])
    try:
        yield rig
    finally:
        rig.close()


CARRIERS = ["twilio", "telnyx", "plivo", "exotel", "vonage"]


@pytest.fixture(scope="module", params=[name for name in PROTOCOLS if name not in CARRIERS])
def rig(request):
    yield from running(request.param)


@pytest.fixture(scope="module", params=CARRIERS)
def carrier_rig(request):
    yield from running(request.param)


@pytest.mark.generated
@given(data=st.data())
@budget(ci=80, long=3000)
def test_every_inbound_message_is_delivered_ignored_or_counted(rig: Rig, data):
    rig.send_batch(data.draw(st.lists(rig.protocol.messages, min_size=1, max_size=BATCH)))


@pytest.mark.generated
@given(data=st.data())
@budget(ci=50, long=800)
def test_every_carrier_message_is_delivered_ignored_or_counted(carrier_rig: Rig, data):
    protocol = carrier_rig.protocol
    carrier_rig.send_batch(data.draw(st.lists(protocol.messages, min_size=1, max_size=BATCH)))


# -- the defects found, as plain regression tests -------------------------------------------


async def run_messages(
    serializer: FrameSerializer, messages: list[str | bytes], final: bytes
) -> tuple[WebsocketClientTransport, list[dict[str, Any]]]:
    """Send ``messages`` then ``final`` (audio) to a real pipeline; wait for ``final``.

    Returns:
        The transport (its stats) and the WARNING and ERROR records logged.
    """
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda m: records.append(m.record), level="WARNING")
    try:
        async with RestartableServer() as server:
            t = WebsocketClientTransport(server.uri, client_params(serializer=serializer))
            async with run_pipeline(t) as p:
                await wait_for(lambda: t.input()._ready and server.live, 10)
                for message in [*messages, final]:
                    await server.send_to_clients(message)
                await wait_for(lambda: t.session.stats.messages_in == len(messages) + 1, 10)
                await wait_for(lambda: p.collector.audio().endswith(pcm(0.02, seed=7)), 10)
                assert not p.errors
                await p.end()
    finally:
        logger.remove(sink)
    return t, records


def proto_message_frame(data: str) -> bytes:
    """A Protobuf ``Frame`` holding a transport message with ``data``."""
    message = frame_protos.MessageFrame(data=data)  # type: ignore[attr-defined]
    return frame_protos.Frame(message=message).SerializeToString()  # type: ignore[attr-defined]


async def test_protobuf_messages_pipecat_logs_an_error_for_are_counted_decode_errors():
    """Found by the fuzzing: Pipecat's serializer logs an ERROR line for each message
    with no frame in it (an empty message, unknown fields only) and each transport
    message that is not JSON, and returns None; the input counted them as ignored, so
    a peer sending them got one ERROR line per message. Now: decode errors, logged at
    a limited rate, without Pipecat's lines."""
    bad = [
        b"",  # an empty binary message
        b"\x08\x01",  # a field Frame does not have
        proto_message_frame("not json"),
        proto_message_frame("[" * 2000 + "]" * 2000),  # too deep to parse
    ]
    n = 10
    t, records = await run_messages(
        ProtobufFrameSerializer(), bad * n, encode_audio(pcm(0.02, seed=7), RATE, 1)
    )
    assert t.stats.decode_errors == len(bad) * n
    assert t.stats.messages_ignored == 0
    assert [r for r in records if r["level"].name == "ERROR"] == []
    assert 1 <= len(records) <= 2  # rate-limited, naming the cause
    assert "no frame" in records[0]["message"]


@pytest.mark.parametrize("name", ["protobuf", "raw"])
async def test_audio_without_samples_is_counted_as_ignored(name):
    """Found by the fuzzing: received audio with no samples (Protobuf audio with an
    empty ``audio``, an empty binary message with raw PCM) was neither pushed (Pipecat's
    input skips it) nor counted anywhere. Now counted in ``messages_ignored``."""
    audio = pcm(0.02, seed=7)
    if name == "protobuf":
        serializer: FrameSerializer = ProtobufFrameSerializer()
        empty, final = encode_audio(b"", RATE, 1), encode_audio(audio, RATE, 1)
    else:
        serializer, empty, final = RawPCMSerializer(), b"", audio
    t, _ = await run_messages(serializer, [empty] * 5, final)
    assert t.stats.messages_ignored == 5
    assert t.stats.decode_errors == 0


@pytest.mark.parametrize("name", ["protobuf", "raw"])
async def test_transport_message_nested_too_deep_to_print_is_a_decode_error(name):
    """Found by the fuzzing (long run): a transport message nested about 980 levels
    deep parsed, but Pipecat prints every frame it pushes and ``str(frame)`` raised
    ``RecursionError``: the message was lost and an ``ErrorFrame`` went up the
    pipeline, for each such message. Now JSON deeper than ``peer_json.MAX_DEPTH`` is
    a decode error, as JSON too deep to parse at all was."""
    depths = [65, 500, 900, 950, 970, 980, 990, 1000, 5000]
    texts = ["[" * depth + "]" * depth for depth in depths]
    audio = pcm(0.02, seed=7)
    if name == "protobuf":
        serializer: FrameSerializer = ProtobufFrameSerializer()
        messages: list[str | bytes] = [proto_message_frame(text) for text in texts]
        final: bytes = encode_audio(audio, RATE, 1)
    else:
        serializer, messages, final = RawPCMSerializer(), list(texts), audio
    t, records = await run_messages(serializer, messages, final)  # no ErrorFrame in it
    assert t.stats.decode_errors == len(depths)
    assert "nested deeper than 64" in records[0]["message"]
