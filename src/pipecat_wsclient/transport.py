#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The input and output processors and :class:`WebsocketClientTransport`.

The transport owns one :class:`~pipecat_wsclient.session.WebsocketClientSession`
shared by its input and output. The input deserializes what arrives and
pushes it downstream; the output serializes what the pipeline produces and
sends audio on a real-time schedule (:class:`~pipecat_wsclient.pacing.PaceClock`).
Connection failures become a fatal ``ErrorFrame`` and an
``on_connection_error`` event: the pipeline never runs on silently against a
dead socket.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Coroutine
from typing import Any

from loguru import logger
from pipecat.audio.utils import pcm_to_wav
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    OutputTransportReadyFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport
from pipecat.utils.utils import obj_id
from websockets.asyncio.client import ClientConnection

from pipecat_wsclient.errors import ConnectionFailure, error_category
from pipecat_wsclient.outage import HeldFrame, OutageBuffer
from pipecat_wsclient.pacing import DEFAULT_MAX_LAG_SECS, PaceClock, pcm_duration
from pipecat_wsclient.params import WebsocketClientParams
from pipecat_wsclient.protobuf_audio import decode_audio, encode_audio, is_stock_protobuf
from pipecat_wsclient.sender import LEAN_SENDER_FITS, LeanMediaSender
from pipecat_wsclient.session import SessionState, WebsocketClientCallbacks, WebsocketClientSession
from pipecat_wsclient.stats import WebsocketClientStats
from pipecat_wsclient.throttle import LogThrottle

CANCEL_CLOSE_TIMEOUT_SECS = 0.5
"""Bound for the closing handshake on ``CancelFrame``, which must end promptly."""

MAX_PENDING_MESSAGES = 1000
"""Messages held while the input is not ready yet; older ones are dropped beyond it."""


class WebsocketClientInputTransport(BaseInputTransport):
    """WebSocket client input transport for receiving frames.

    Handles incoming WebSocket messages, deserializes them to frames, and
    pushes them downstream in the processing pipeline. Audio goes through
    ``push_audio_frame`` (so ``audio_in_filter`` and passthrough apply),
    ``InputTransportMessageFrame`` is broadcast, other frames are pushed.
    Messages that arrive before the pipeline has started are held and
    delivered in order once it has; messages that fail to deserialize are
    counted (``stats.decode_errors``) and logged at a limited rate.
    """

    def __init__(
        self,
        transport: WebsocketClientTransport,
        session: WebsocketClientSession,
        params: WebsocketClientParams,
    ):
        """Initialize the WebSocket client input transport.

        Args:
            transport: The parent transport instance.
            session: The WebSocket session to use for communication.
            params: Configuration parameters for the transport.
        """
        super().__init__(params)
        self._transport = transport
        self._session = session
        self._ws_params = params
        self._stats = session.stats
        self._ready = False
        self._stopped = False
        self._pending: deque[str | bytes] = deque()
        self._decode_log = LogThrottle()

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Set up the input transport with the frame processor setup.

        Args:
            setup: The frame processor setup configuration.
        """
        await super().setup(setup)
        await self._transport._attach(self, setup)

    async def start(self, frame: StartFrame):
        """Start the input transport and initialize the WebSocket connection.

        Args:
            frame: The start frame containing initialization parameters.
        """
        await super().start(frame)
        self._stopped = False
        self._transport._start_connecting(self)
        await self.set_transport_ready(frame)
        await self._transport._attach_protocol(self)
        # Deliver what arrived before we were ready, in order; on_message keeps
        # queueing behind it until the queue is empty.
        while self._pending:
            await self._handle_message(self._pending.popleft())
        self._ready = True

    async def stop(self, frame: EndFrame):
        """Stop the input transport and disconnect from WebSocket.

        Args:
            frame: The end frame signaling transport shutdown.
        """
        await super().stop(frame)
        await self._stop_receiving()
        await self._transport._release(self)

    async def cancel(self, frame: CancelFrame):
        """Cancel the input transport and disconnect from WebSocket.

        Args:
            frame: The cancel frame signaling immediate cancellation.
        """
        await super().cancel(frame)
        await self._stop_receiving()
        await self._transport._release(self, close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)

    async def cleanup(self):
        """Clean up the input transport resources."""
        await super().cleanup()
        await self._stop_receiving()
        await self._transport._release(self, close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)
        await self._transport.cleanup()

    async def on_message(self, websocket: ClientConnection | None, message: str | bytes):
        """Handle incoming WebSocket messages.

        Args:
            websocket: The WebSocket connection that received the message.
            message: The received message data.
        """
        if self._ready and not self._pending:
            await self._handle_message(message)
        elif not self._stopped:
            if len(self._pending) >= MAX_PENDING_MESSAGES:
                self._pending.popleft()
                self._stats.dropped_frames += 1
            self._pending.append(message)

    async def _stop_receiving(self):
        self._ready = False
        self._stopped = True
        self._pending.clear()
        await self._transport._detach_protocol()

    async def deliver(self, frame: Frame):
        """Push a frame into the pipeline as if it had been received.

        Protocols that hold inbound audio (a carrier's playback clock) hand
        it over here when it is due.

        Args:
            frame: The frame; audio goes through ``push_audio_frame``.
        """
        if self._stopped:
            return
        if isinstance(frame, InputAudioRawFrame):
            self._stats.audio_secs_received += pcm_duration(
                len(frame.audio), frame.sample_rate, frame.num_channels
            )
            if self._params.audio_in_enabled:
                await self.push_audio_frame(frame)
                return
        if isinstance(frame, InputTransportMessageFrame):
            await self.broadcast_frame(InputTransportMessageFrame, message=frame.message)
        else:
            await self.push_frame(frame)

    async def push_audio_frame(self, frame: InputAudioRawFrame):
        """Push received audio downstream.

        Without an ``audio_in_filter`` the frame is pushed at once, in arrival
        order with the other frames received, instead of going through the
        base class's audio queue and task (which then only pass it on): one
        queue and task switch less per chunk. With a filter, the base class
        path applies unchanged.

        Args:
            frame: The input audio frame.
        """
        params = self._params
        if params.audio_in_filter is not None:
            await super().push_audio_frame(frame)
        elif (
            frame.audio
            and params.audio_in_enabled
            and params.audio_in_passthrough
            and not self._paused
        ):
            # As the base class's audio task: frames with no audio are skipped.
            await self.push_frame(frame)

    async def _handle_message(self, message: str | bytes):
        serializer = self._transport.serializer
        try:
            frame: Frame | None = None
            if is_stock_protobuf(serializer):
                frame = decode_audio(message)
            if frame is None:
                frame = await serializer.deserialize(message)
        except Exception as e:
            self._stats.decode_errors += 1
            suppressed = self._decode_log.allow(asyncio.get_running_loop().time())
            if suppressed is not None:
                kind = "text" if isinstance(message, str) else "binary"
                logger.warning(
                    f"{self}: could not deserialize a {kind} message of {len(message)} "
                    f"bytes with {serializer}: {e!r}"
                    + (f" ({suppressed} more since the last report)" if suppressed else "")
                )
            return
        if frame is None:
            self._stats.messages_ignored += 1
            return
        await self.deliver(frame)


class WebsocketClientOutputTransport(BaseOutputTransport):
    """WebSocket client output transport for sending frames.

    Handles outgoing frames, serializes them for WebSocket transmission, and
    sends audio in real time: chunk ``k`` leaves no earlier than
    ``start + audio sent before it - audio_out_send_lead_secs``, an absolute
    schedule that does not drift. On ``InterruptionFrame`` the serializer gets
    the frame (telephony serializers answer with their "clear" message),
    audio queued before the interruption is dropped and the schedule restarts.
    """

    def __init__(
        self,
        transport: WebsocketClientTransport,
        session: WebsocketClientSession,
        params: WebsocketClientParams,
    ):
        """Initialize the WebSocket client output transport.

        Args:
            transport: The parent transport instance.
            session: The WebSocket session to use for communication.
            params: Configuration parameters for the transport.
        """
        super().__init__(params)
        self._transport = transport
        self._session = session
        self._ws_params = params
        self._stats = session.stats
        self._pace = PaceClock(
            lead_secs=params.audio_out_send_lead_secs, max_lag_secs=DEFAULT_MAX_LAG_SECS
        )
        # Interruptible audio frames with an id below this were queued before
        # the last interruption and must not be sent any more.
        self._interrupted_before_id = 0
        self._drop_log = LogThrottle()
        reconnect = params.reconnect
        self._outage = OutageBuffer(
            max_audio_secs=reconnect.buffer_audio_secs if reconnect else 0.0,
            max_messages=reconnect.buffer_max_messages if reconnect else 0,
        )
        # Held by whoever sends in order (the audio task, flushes after a
        # reconnect); urgent messages and interruptions do not wait for it.
        self._send_lock = asyncio.Lock()
        self._flush_task: asyncio.Task | None = None

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Set up the output transport with the frame processor setup.

        Args:
            setup: The frame processor setup configuration.
        """
        await super().setup(setup)
        await self._transport._attach(self, setup)

    async def start(self, frame: StartFrame):
        """Start the output transport and initialize the WebSocket connection.

        Args:
            frame: The start frame containing initialization parameters.
        """
        await super().start(frame)
        self._transport._start_connecting(self)
        await self.set_transport_ready(frame)

    async def set_transport_ready(self, frame: StartFrame):
        """Start the media senders (ours: :class:`LeanMediaSender`) and report ready.

        Does what ``BaseOutputTransport.set_transport_ready`` does, with
        :class:`~pipecat_wsclient.sender.LeanMediaSender` in place of the base
        class's sender, which it cannot be told to use.

        Args:
            frame: The start frame containing initialization parameters.
        """
        for name in self._params.audio_out_destinations:
            await self.register_audio_destination(name)
        for name in self._params.video_out_destinations:
            await self.register_video_destination(name)
        # The default destination, then one sender per named destination
        # (audio and video of the same name share it).
        named = set(self._params.audio_out_destinations + self._params.video_out_destinations)
        destinations: list[str | None] = [None, *sorted(named)]
        lean: dict[str, Any] = {
            "bounds_sends": self._ws_params.write_timeout is not None,
            "downstream_secs": self._ws_params.audio_out_downstream_secs,
            "until_dry": self._audio_until_dry,
            "on_stale_tail": self._drop_stale_tail,
        }
        for destination in destinations:
            sender_cls = LeanMediaSender if LEAN_SENDER_FITS else BaseOutputTransport.MediaSender
            sender = sender_cls(
                self,
                destination=destination,
                sample_rate=self.sample_rate,
                audio_chunk_size=self.audio_chunk_size,
                params=self._params,
                **(lean if LEAN_SENDER_FITS else {}),
            )
            self._media_senders[destination] = sender
            await sender.start(frame)
        await self.push_frame(OutputTransportReadyFrame(), FrameDirection.UPSTREAM)

    def _audio_until_dry(self) -> float:
        return self._pace.ahead(asyncio.get_running_loop().time())

    def _drop_stale_tail(self, num_bytes: int):
        secs = pcm_duration(num_bytes, *self._audio_format)
        self._stats.dropped_frames += 1
        self._stats.dropped_audio_secs += secs
        logger.debug(
            f"{self}: the last {secs * 1000:.0f} ms of audio (less than a chunk) ended "
            "long before the EndFrame: dropped rather than played after a pause"
        )

    async def stop(self, frame: EndFrame):
        """Stop the output transport and disconnect from WebSocket.

        Queued audio and the end silence are sent first, then the serializer
        gets the ``EndFrame`` (telephony serializers hang up on it), then the
        connection closes with code 1000.

        Args:
            frame: The end frame signaling transport shutdown.
        """
        await super().stop(frame)
        if not isinstance(self._transport.serializer, ProtobufFrameSerializer):
            # Protobuf has no EndFrame (it would only log a warning).
            await self._write_frame(frame)
        else:
            async with self._send_lock:
                await self._flush_outage_locked()
        await self._cancel_flush()
        self.abandon_outage()
        await self._transport._release(self)

    async def cancel(self, frame: CancelFrame):
        """Cancel the output transport and disconnect from WebSocket.

        Args:
            frame: The cancel frame signaling immediate cancellation.
        """
        await super().cancel(frame)
        await self._cancel_flush()
        self.abandon_outage()
        if self._session.is_connected and not isinstance(
            self._transport.serializer, ProtobufFrameSerializer
        ):
            # Telephony protocols hang up on cancel too.
            await self._write_frame(frame, urgent=True)
        await self._transport._release(self, close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)

    async def cleanup(self):
        """Clean up the output transport resources."""
        await super().cleanup()
        await self._cancel_flush()
        self.abandon_outage()
        await self._transport._release(self, close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)
        await self._transport.cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Process a frame; interruptions also go to the far end.

        Args:
            frame: The frame to process.
            direction: The direction of frame flow in the pipeline.
        """
        if isinstance(frame, InterruptionFrame):
            # Before anything else: from here on, no audio queued before the
            # interruption may leave, and the clear goes out first.
            self._interrupted_before_id = obj_id()
            self._pace.reset()
            self._stats.interrupted_audio_secs += self._outage.discard_interrupted(
                self._interrupted_before_id
            )
            await self._write_frame(frame, urgent=True)
            # What was played before it goes downstream before it.
            for sender in list(self._media_senders.values()):
                if isinstance(sender, LeanMediaSender):
                    await sender.push_gathered()
        await super().process_frame(frame, direction)

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ):
        """Send a transport message through the WebSocket.

        Args:
            frame: The transport message frame to send.
        """
        await self._write_frame(frame, urgent=isinstance(frame, OutputTransportMessageUrgentFrame))

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Write an audio frame to the WebSocket with optional WAV header.

        Frames longer than a chunk (end silence, DTMF tones) are sent as
        chunks, each on the real-time schedule.

        Args:
            frame: The output audio frame to write.

        Returns:
            True if the audio frame was written successfully, False otherwise.
        """
        if not self._session.is_reconnecting and not await self._wait_connected():
            self._count_dropped(pcm_duration(len(frame.audio), *self._audio_format))
            return False
        audio = frame.audio
        size = self.audio_chunk_size or len(audio)
        if len(audio) <= size:
            return await self._write_audio_chunk(frame, audio)
        written = True
        for offset in range(0, len(audio), size):
            written = await self._write_audio_chunk(frame, audio[offset : offset + size])
            if not written:
                break
        return written

    def _supports_native_dtmf(self) -> bool:
        return bool(getattr(self._transport.serializer, "supports_native_dtmf", False))

    async def _write_dtmf_native(self, frame: OutputDTMFFrame | OutputDTMFUrgentFrame):
        await self._write_frame(frame, urgent=isinstance(frame, OutputDTMFUrgentFrame))

    @property
    def _audio_format(self) -> tuple[int, int]:
        return self.sample_rate, self._params.audio_out_channels

    async def _wait_connected(self) -> bool:
        """Whether to go on with a send: connected, or about to know it is not.

        The session still counts as open for a moment after the socket has
        died (until its receive task reports it): a send then fails, and the
        frame is held or counted under the reconnect policy, not dropped as
        if there had never been a connection.
        """
        session = self._session
        if session.is_connected or session.state is SessionState.OPEN:
            return True
        return await session.wait_connected(self._ws_params.open_timeout)

    def _is_interrupted(self, frame: Frame) -> bool:
        return frame.interruptible and frame.id < self._interrupted_before_id

    async def _write_audio_chunk(self, frame: OutputAudioRawFrame, audio: bytes) -> bool:
        sample_rate, channels = self._audio_format
        duration = pcm_duration(len(audio), sample_rate, channels)
        # The schedule runs during an outage too: audio is held at the pace
        # the pipeline produces it, and the oldest goes first past the bound.
        delay = self._pace.delay(asyncio.get_running_loop().time())
        if delay > 0:
            await asyncio.sleep(delay)
        if self._is_interrupted(frame):
            self._stats.interrupted_audio_secs += duration
            return False
        chunk = OutputAudioRawFrame(audio=audio, sample_rate=sample_rate, num_channels=channels)
        held = HeldFrame(chunk, duration, frame.id, frame.interruptible)
        async with self._send_lock:
            await self._flush_outage_locked()
            if self._must_hold():
                self._outage.add(held)
            elif not await self._send_held(held) and not self._hold_after_failed_send(held):
                return False
        self._pace.sent(duration)
        return True

    async def _send_held(self, held: HeldFrame) -> bool:
        """Serialize and send one frame now; audio gets its WAV header here."""
        frame = held.frame
        serializer = self._transport.serializer
        payload: str | bytes | list[str | bytes] | None
        if held.audio_secs and isinstance(frame, OutputAudioRawFrame):
            audio = frame.audio
            if self._ws_params.add_wav_header:
                audio = pcm_to_wav(audio, frame.sample_rate, frame.num_channels)
            if is_stock_protobuf(serializer):
                payload = encode_audio(
                    audio,
                    frame.sample_rate,
                    frame.num_channels,
                    frame_id=frame.id,
                    name=frame.name,
                    pts=frame.pts,
                )
            else:
                if audio is not frame.audio:
                    frame = OutputAudioRawFrame(audio, frame.sample_rate, frame.num_channels)
                payload = await serializer.serialize(frame)
        else:
            payload = await serializer.serialize(frame)
        if payload:
            # No await between this check and the send: an interruption that
            # arrived during serialize() still stops this chunk.
            if held.interruptible and held.source_id < self._interrupted_before_id:
                self._stats.interrupted_audio_secs += held.audio_secs
                return True
            # Our protocols may frame one chunk as several messages.
            for message in payload if isinstance(payload, list) else (payload,):
                if not await self._session.send(message):
                    return False
        if held.audio_secs:
            self._stats.audio_secs_sent += held.audio_secs
            self._stats.audio_frames_sent += 1
        return True

    def _must_hold(self) -> bool:
        return self._session.is_reconnecting or bool(self._outage)

    def _hold_after_failed_send(self, held: HeldFrame) -> bool:
        """Hold a frame whose send failed when the connection may come back; else count it."""
        if self._ws_params.reconnect is not None and not self._session.is_closing:
            self._outage.add(held)
            return True
        self._count_dropped(held.audio_secs)
        return False

    async def _flush_outage_locked(self):
        """Send what was held during an outage, in order, audio paced (lock held)."""
        if not self._outage or not self._session.is_connected:
            return
        loop = asyncio.get_running_loop()
        for held in self._outage.drain():
            if held.audio_secs:
                delay = self._pace.delay(loop.time())
                if delay > 0:
                    await asyncio.sleep(delay)
            if not await self._send_held(held):
                # Lost again: keep it first in line for the next connection.
                self._outage.requeue(held)
                if self._ws_params.reconnect is None or self._session.is_closing:
                    self._outage.drop_all()
                break
            if held.audio_secs:
                self._pace.sent(held.audio_secs)
        self._report_outage_drops()

    def schedule_flush(self):
        """Send what was held during the outage, in the background (connection is back)."""
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = self.create_task(self._flush_task_handler(), "flush")

    async def _flush_task_handler(self):
        async with self._send_lock:
            await self._flush_outage_locked()
        self._report_outage_drops()

    async def _cancel_flush(self):
        if self._flush_task is not None:
            task, self._flush_task = self._flush_task, None
            await self.cancel_task(task)

    def abandon_outage(self):
        """The connection is not coming back: count what is held as dropped."""
        self._outage.drop_all()
        self._report_outage_drops()

    def _report_outage_drops(self):
        report = self._outage.take_report()
        if not report:
            return
        self._stats.dropped_frames += report.audio_frames + report.messages
        self._stats.dropped_audio_secs += report.audio_secs
        logger.warning(f"{self}: connection outage to {self._session.uri}: dropped {report}")

    async def _write_frame(self, frame: Frame, *, urgent: bool = False) -> bool:
        """Send a non-audio frame, or hold it during an outage.

        Args:
            frame: The frame to serialize.
            urgent: Send at once without waiting for audio being flushed.

        Returns:
            Whether the transport took the frame. A serializer that emits no
            payload has still taken it.
        """
        held = HeldFrame(frame, source_id=frame.id)
        if urgent:
            return await self._send_or_hold(held)
        async with self._send_lock:
            await self._flush_outage_locked()
            return await self._send_or_hold(held)

    async def _send_or_hold(self, held: HeldFrame) -> bool:
        if self._session.is_reconnecting:
            self._outage.add(held)
            return True
        if not await self._wait_connected():
            self._count_dropped(0.0)
            return False
        return await self._send_held(held) or self._hold_after_failed_send(held)

    def _count_dropped(self, audio_secs: float):
        self._stats.dropped_frames += 1
        self._stats.dropped_audio_secs += audio_secs
        suppressed = self._drop_log.allow(asyncio.get_running_loop().time())
        if suppressed is not None:
            logger.warning(
                f"{self}: not connected to {self._session.uri}, dropping output "
                f"({self._stats.dropped_frames} frames, "
                f"{self._stats.dropped_audio_secs:.2f}s of audio dropped so far)"
            )


class ProtocolIO:
    """What a protocol (serializer) may do by itself: send, deliver frames, run tasks.

    Given to a serializer's ``attach(io)`` when the pipeline starts, for
    protocols with a life of their own, e.g. a carrier's playback clock that
    hands over the bot's audio in real time and echoes marks. Tasks created
    here are cancelled when the transport stops.
    """

    def __init__(self, session: WebsocketClientSession, input: WebsocketClientInputTransport):
        """Initialize the IO.

        Args:
            session: The connection to send on.
            input: The processor that delivers frames into the pipeline.
        """
        self._session = session
        self._input = input
        self._tasks: list[asyncio.Task] = []

    async def send(self, message: str | bytes) -> bool:
        """Send a message now; False if there is no open connection."""
        return await self._session.send(message)

    async def deliver(self, frame: Frame) -> None:
        """Push a frame into the pipeline as if it had been received."""
        await self._input.deliver(frame)

    def create_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run a coroutine until the transport stops."""
        task = self._input.create_task(coroutine, name)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        """Cancel the tasks and wait for them to end (the transport is stopping)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await self._input.cancel_task(task, timeout=CANCEL_CLOSE_TIMEOUT_SECS)


class WebsocketClientTransport(BaseTransport):
    """WebSocket client transport for bidirectional communication.

    Provides a complete WebSocket client transport implementation with input
    and output capabilities, connection management, and event handling. The
    input and output share one connection: it is dialed when the pipeline
    starts and closed (code 1000) when both have finished.

    Event handlers available:

    - on_connected(transport, websocket): Connected to WebSocket server
    - on_disconnected(transport, websocket): Disconnected from WebSocket server
      (``websocket.close_code`` and ``websocket.close_reason`` say how)
    - on_connection_error(transport, error): The connection could not be made,
      or was lost for good (not retried, or the reconnect policy gave up);
      ``error`` is a :class:`~pipecat_wsclient.errors.ConnectionFailure`. A
      fatal ``ErrorFrame`` with the same message is pushed upstream too.
    - on_reconnecting(transport, attempt, delay, cause): The connection was
      lost (``cause``, a ``ConnectionFailure``); attempt number ``attempt``
      (from 1) follows in ``delay`` seconds. The pipeline keeps running.
    - on_reconnected(transport, attempt, downtime_secs): Connected again;
      audio held during the outage is being sent. ``on_connected`` fires only
      for the first connection.

    Example::

        @transport.event_handler("on_connected")
        async def on_connected(transport, websocket):
            ...

        @transport.event_handler("on_connection_error")
        async def on_connection_error(transport, error):
            logger.error(f"call failed: {error}")
    """

    def __init__(
        self,
        uri: str,
        params: WebsocketClientParams | None = None,
    ):
        """Initialize the WebSocket client transport.

        Args:
            uri: The WebSocket URI to connect to.
            params: Optional configuration parameters for the transport.

        Raises:
            ValueError: If ``uri`` is not a valid ``ws://`` or ``wss://`` URI.
        """
        super().__init__()
        self._params = params or WebsocketClientParams()
        self._params.serializer = self._params.serializer or ProtobufFrameSerializer()
        callbacks = WebsocketClientCallbacks(
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_message=self._on_message,
            on_connection_lost=self._on_connection_lost,
            on_reconnecting=self._on_reconnecting,
            on_reconnected=self._on_reconnected,
            on_session_start=self._on_session_start,
        )
        self._session = WebsocketClientSession(uri, self._params, callbacks, self.name)
        self._input: WebsocketClientInputTransport | None = None
        self._output: WebsocketClientOutputTransport | None = None
        self._serializer_ready = False
        self._connect_task: asyncio.Task | None = None
        self._reporter: FrameProcessor | None = None
        self._ever_connected = False
        self._protocol_io: ProtocolIO | None = None

        self._register_event_handler("on_connected")
        self._register_event_handler("on_disconnected")
        self._register_event_handler("on_connection_error")
        self._register_event_handler("on_reconnecting")
        self._register_event_handler("on_reconnected")

    def input(self) -> WebsocketClientInputTransport:
        """Get the input transport for receiving frames.

        Returns:
            The WebSocket client input transport instance.
        """
        if not self._input:
            self._input = WebsocketClientInputTransport(self, self._session, self._params)
        return self._input

    def output(self) -> WebsocketClientOutputTransport:
        """Get the output transport for sending frames.

        Returns:
            The WebSocket client output transport instance.
        """
        if not self._output:
            self._output = WebsocketClientOutputTransport(self, self._session, self._params)
        return self._output

    @property
    def params(self) -> WebsocketClientParams:
        """The transport's parameters."""
        return self._params

    @property
    def serializer(self) -> FrameSerializer:
        """The frame serializer in use."""
        assert self._params.serializer is not None
        return self._params.serializer

    @property
    def session(self) -> WebsocketClientSession:
        """The WebSocket session shared by the input and output."""
        return self._session

    @property
    def stats(self) -> WebsocketClientStats:
        """A snapshot of the transport's counters (bytes, messages, audio, errors, RTT)."""
        return self._session.stats.snapshot()

    # -- used by the processors ----------------------------------------------

    async def _attach(self, processor: FrameProcessor, setup: FrameProcessorSetup):
        """Set up what ``processor`` shares with its sibling, and hold the connection."""
        await self._session.setup(setup.task_manager)
        if not self._serializer_ready:
            self._serializer_ready = True
            await self.serializer.setup(setup)
        self._session.acquire(processor)

    async def _attach_protocol(self, input: WebsocketClientInputTransport):
        """Give a protocol that needs it a way to send and deliver on its own."""
        attach = getattr(self.serializer, "attach", None)
        if attach is not None and self._protocol_io is None:
            self._protocol_io = ProtocolIO(self._session, input)
            await attach(self._protocol_io)

    async def _detach_protocol(self):
        if self._protocol_io is not None:
            await self._protocol_io.close()

    def _start_connecting(self, processor: FrameProcessor):
        """Dial in the background, once; failures are reported from ``processor``."""
        if self._reporter is None:
            self._reporter = processor
        if self._connect_task is None:
            self._connect_task = self._session.task_manager.create_task(
                self._connect_task_handler(), f"{self}::connect"
            )

    async def _release(self, processor: FrameProcessor, close_timeout: float | None = None):
        if self._session.is_last_holder(processor) and self._connect_task is not None:
            task, self._connect_task = self._connect_task, None
            if not task.done():
                await self._session.task_manager.cancel_task(task)
        await self._session.release(processor, close_timeout=close_timeout)

    async def _connect_task_handler(self):
        try:
            await self._session.connect()
        except ConnectionFailure as failure:
            await self._report_failure(failure)

    async def _report_failure(self, failure: ConnectionFailure):
        """Tell the application and the pipeline that the connection is unusable."""
        await self._call_event_handler("on_connection_error", failure)
        processor = self._reporter
        if processor is None:
            logger.error(f"{self}: {failure}")
            return
        error = ErrorFrame(
            error=str(failure),
            exception=failure,
            processor=processor,
            category=error_category(failure),
        )
        # Set after construction, as Pipecat does, to avoid the deprecation
        # warning of the constructor flag: the worker cancels the pipeline.
        error.fatal = True
        await processor.push_error_frame(error, force_treat_as_permanent=True)

    # -- session callbacks ----------------------------------------------------

    async def _on_connected(self, websocket: ClientConnection):
        if not self._ever_connected:
            self._ever_connected = True
            await self._call_event_handler("on_connected", websocket)

    async def _on_reconnecting(self, attempt: int, delay: float, cause: ConnectionFailure):
        await self._call_event_handler("on_reconnecting", attempt, delay, cause)

    async def _on_reconnected(self, websocket: ClientConnection, attempt: int, downtime: float):
        await self._call_event_handler("on_reconnected", attempt, downtime)
        if self._output is not None:
            self._output.schedule_flush()

    async def _on_session_start(self) -> list[str | bytes]:
        messages: list[str | bytes] = []
        for provider in (
            getattr(self.serializer, "session_start_messages", None),
            self._params.session_start_messages,
        ):
            if provider is not None:
                result = provider()
                messages.extend(await result if inspect.isawaitable(result) else result)
        return messages

    async def _on_disconnected(self, websocket: ClientConnection):
        await self._call_event_handler("on_disconnected", websocket)

    async def _on_connection_lost(self, failure: ConnectionFailure):
        if self._output is not None:
            self._output.abandon_outage()
        await self._report_failure(failure)

    async def _on_message(self, websocket: ClientConnection, message: str | bytes):
        if self._input:
            await self._input.on_message(websocket, message)


__all__ = [
    "WebsocketClientInputTransport",
    "WebsocketClientOutputTransport",
    "WebsocketClientTransport",
]
