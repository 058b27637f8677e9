#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The input processor: what arrives on the connection, into the pipeline.

Messages are deserialized (the default protobuf format's audio without
reflection, :mod:`pipecat_wsclient.protobuf_audio`) and pushed downstream in
arrival order; messages that arrive before the pipeline has started are held
and delivered once it has; what cannot be decoded is counted and logged at a
limited rate.

:class:`TransportProcessor`, the base of the input and of the output
(:mod:`pipecat_wsclient.output`), is here too: how each of them holds the
transport's connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from websockets.asyncio.client import ClientConnection

from pipecat_wsclient import upstream
from pipecat_wsclient.coalesce import audio_problem, coalesce_audio
from pipecat_wsclient.pacing import pcm_duration
from pipecat_wsclient.params import CANCEL_CLOSE_TIMEOUT_SECS, WebsocketClientParams
from pipecat_wsclient.protobuf_audio import decode_audio, decodes_as_stock_protobuf
from pipecat_wsclient.session import WebsocketClientSession
from pipecat_wsclient.throttle import LogThrottle

if TYPE_CHECKING:
    from pipecat_wsclient.transport import WebsocketClientTransport

MAX_PENDING_MESSAGES = 1000
"""Messages held while the input is not ready yet; older ones are dropped beyond it."""


class TransportProcessor(FrameProcessor):
    """What the transport's input and output share: how a processor holds the connection.

    Keeps the transport, its session and its parameters. :meth:`setup`
    attaches to the transport (which sets the session and the serializer up
    once, for both) and holds the connection; :meth:`_disconnect` (from
    ``stop``, ``cancel`` and :meth:`cleanup`) stops the processor's own
    traffic (:meth:`_stop_traffic`, which subclasses implement) and lets go
    of it. Comes before Pipecat's base in the bases:
    ``class X(TransportProcessor, BaseInputTransport)``.
    """

    def __init__(
        self,
        transport: WebsocketClientTransport,
        session: WebsocketClientSession,
        params: WebsocketClientParams,
    ):
        """Initialize the processor.

        Args:
            transport: The parent transport instance.
            session: The WebSocket session to use for communication.
            params: Configuration parameters for the transport.
        """
        super().__init__(params=params)
        self._transport = transport
        self._session = session
        self._ws_params = params

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Set up the processor and attach it to the transport.

        Args:
            setup: The frame processor setup configuration.
        """
        await super().setup(setup)
        await self._transport._attach(self, setup)

    async def cleanup(self):
        """Clean up the processor: let go of the connection, clean the transport up."""
        await super().cleanup()
        await self._disconnect(close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)
        await self._transport.cleanup()

    async def _disconnect(self, close_timeout: float | None = None):
        """Stop this processor's traffic and let go of the connection.

        The connection closes when both processors have let go of it.

        Args:
            close_timeout: Bound for the closing handshake, overriding the
                ``close_timeout`` param (short on cancel and cleanup).
        """
        await self._stop_traffic()
        await self._transport._release(self, close_timeout=close_timeout)

    async def _stop_traffic(self):
        """Stop what this processor receives or sends (it lets go of the connection)."""


class WebsocketClientInputTransport(TransportProcessor, BaseInputTransport):
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
        """Initialize the input transport; the arguments are :class:`TransportProcessor`'s."""
        super().__init__(transport, session, params)
        self._stats = session.stats
        self._ready = False
        self._stopped = False
        self._pending: deque[str | bytes] = deque()
        self._decode_log = LogThrottle()

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
        await self._disconnect()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Process a frame; a protocol delivers what it still holds before an ``EndFrame``.

        A serializer with an ``end_input()`` hook (the call protocols: their
        inbound resampler's tail) delivers its last audio before the
        ``EndFrame`` goes on downstream (Pipecat's input pushes it on, then stops).

        Args:
            frame: The frame to process.
            direction: The direction of frame flow.
        """
        if isinstance(frame, EndFrame) and self._ready:
            end_input = getattr(self._transport.serializer, "end_input", None)
            if end_input is not None:
                await end_input()
        await super().process_frame(frame, direction)

    async def cancel(self, frame: CancelFrame):
        """Cancel the input transport and disconnect from WebSocket.

        Args:
            frame: The cancel frame signaling immediate cancellation.
        """
        await super().cancel(frame)
        await self._disconnect(close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)

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
                self._stats.dropped_in_messages += 1
            self._pending.append(message)

    async def on_messages(self, websocket: ClientConnection | None, messages: list[str | bytes]):
        """Handle messages received together, in order.

        Runs of plain audio among them go downstream as one frame
        (:func:`~pipecat_wsclient.coalesce.coalesce_audio`): only what has
        already arrived is joined, so nothing waits. Not with a protocol that
        attaches (``ProtocolIO``): each message goes in turn, as alone.

        Args:
            websocket: The WebSocket connection that received the messages.
            messages: The messages, oldest first.
        """
        if (
            len(messages) == 1
            or not (self._ready and not self._pending)
            or self._transport._protocol_io is not None
        ):
            # A protocol with a life of its own (it delivers and sends from its
            # own tasks too) sees each message decoded and delivered in turn.
            for message in messages:
                await self.on_message(websocket, message)
            return
        frames: list[Frame] = []
        for message in messages:
            frame = await self._decode(message)
            if frame is not None:
                frames.append(frame)
        for frame in coalesce_audio(frames):
            await self.deliver(frame)

    async def _stop_traffic(self):
        """Deliver nothing more; what is held is dropped, the protocol detached."""
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
            problem = audio_problem(frame)
            if problem is not None:
                self._count_decode_error(f"cannot deliver {frame.name}: {problem}")
                return
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
        path applies unchanged, and so it does if the installed Pipecat's
        audio input code differs from the code this copies
        (``upstream.fits("input")``).

        Args:
            frame: The input audio frame.
        """
        params = self._params
        if params.audio_in_filter is not None or not upstream.fits("input"):
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
        frame = await self._decode(message)
        if frame is not None:
            await self.deliver(frame)

    async def _decode(self, message: str | bytes) -> Frame | None:
        """The frame a message carries; None if there is nothing to deliver (counted)."""
        serializer = self._transport.serializer
        try:
            frame: Frame | None = None
            if decodes_as_stock_protobuf(serializer):
                frame = decode_audio(message)
            if frame is None:
                frame = await serializer.deserialize(message)
        except Exception as e:
            kind = "text" if isinstance(message, str) else "binary"
            self._count_decode_error(
                f"could not deserialize a {kind} message of {len(message)} "
                f"bytes with {serializer}: {e!r}"
            )
            return None
        if frame is None or (isinstance(frame, InputAudioRawFrame) and not frame.audio):
            # Nothing to deliver (audio without samples is skipped, as Pipecat's input does).
            self._stats.messages_ignored += 1
            return None
        return frame

    def _count_decode_error(self, what: str):
        """A received message that cannot reach the pipeline: counted, logged at a limited rate."""
        self._stats.decode_errors += 1
        suppressed = self._decode_log.allow(asyncio.get_running_loop().time())
        if suppressed is not None:
            logger.warning(
                f"{self}: {what}"
                + (f" ({suppressed} more since the last report)" if suppressed else "")
            )
