#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The output processor: what the pipeline produces, onto the connection.

Audio leaves on a real-time schedule (:class:`~pipecat_wsclient.pacing.PaceClock`)
through our media sender (:class:`~pipecat_wsclient.sender.LeanMediaSender`);
interruptions go to the far end first and make older audio stale; while the
connection is down, frames are held in the outage buffer and sent in order
when it is back. :class:`~pipecat_wsclient.ledger.OutputLedger` keeps the
books: every frame is sent, held, dropped or interrupted, and counted.

Once the ``EndFrame`` reaches the output, a connection lost is not redialed
(:meth:`~pipecat_wsclient.session.WebsocketClientSession.call_ending`): what
is left is dropped at once, not paced, so the end is bounded whatever the
peer does. The end silence is the transport's own audio: what of it cannot
be sent is not dropped audio, and not warned about.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loguru import logger
from pipecat.audio.utils import pcm_to_wav
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    OutputTransportReadyFrame,
    StartFrame,
    SystemFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.utils.utils import obj_id

from pipecat_wsclient import hooks, upstream
from pipecat_wsclient.input import TransportProcessor
from pipecat_wsclient.ledger import OutputLedger
from pipecat_wsclient.outage import DropReport, HeldFrame, OutageBuffer
from pipecat_wsclient.pacing import DEFAULT_MAX_LAG_SECS, PaceClock, pcm_duration
from pipecat_wsclient.params import (
    CANCEL_CLOSE_TIMEOUT_SECS,
    CANCEL_HANGUP_TIMEOUT_SECS,
    WebsocketClientParams,
)
from pipecat_wsclient.protobuf_audio import encode_audio, is_stock_protobuf
from pipecat_wsclient.sender import END_SILENCE_KEY, LeanMediaSender, count_interruptions
from pipecat_wsclient.session import SessionState, WebsocketClientSession

if TYPE_CHECKING:
    from pipecat_wsclient.transport import WebsocketClientTransport


class WebsocketClientOutputTransport(TransportProcessor, BaseOutputTransport):
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
        """Initialize the output transport; the arguments are :class:`.TransportProcessor`'s."""
        super().__init__(transport, session, params)
        self._pace = PaceClock(
            lead_secs=params.audio_out_send_lead_secs, max_lag_secs=DEFAULT_MAX_LAG_SECS
        )
        reconnect = params.reconnect
        outage = OutageBuffer(
            max_audio_secs=reconnect.buffer_audio_secs if reconnect else 0.0,
            max_messages=reconnect.buffer_max_messages if reconnect else 0,
        )
        self._ledger = OutputLedger(session.stats, outage)
        self._outage = outage
        # Held by whoever sends in order (the audio task, flushes after a
        # reconnect); urgent messages and interruptions do not wait for it.
        self._send_lock = asyncio.Lock()
        self._flush_task: asyncio.Task | None = None
        self._lean_senders: list[LeanMediaSender] = []
        # Id of the last InterruptionFrame: audio frames made before it are stale.
        self._interruption_id = 0

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
        class's sender, which it cannot be told to use. If the installed
        Pipecat's code that this copies changed (``upstream.fits("sender")``),
        the base class does it all with its own sender, which then only
        counts what interruptions discard.

        Args:
            frame: The start frame containing initialization parameters.
        """
        if not upstream.fits("sender"):
            await super().set_transport_ready(frame)
            # Read as the base class wrote it; if that name changed, nothing is
            # counted, but the audio is still Pipecat's to send.
            for sender in getattr(self, "_media_senders", {}).values():
                count_interruptions(sender, self._count_discarded)
            return
        for name in self._params.audio_out_destinations:
            await self.register_audio_destination(name)
        for name in self._params.video_out_destinations:
            await self.register_video_destination(name)
        # The default destination, then one sender per named destination
        # (audio and video of the same name share it).
        named = set(self._params.audio_out_destinations + self._params.video_out_destinations)
        destinations: list[str | None] = [None, *sorted(named)]
        self._lean_senders = []
        for destination in destinations:
            sender = LeanMediaSender(
                self,
                destination=destination,
                sample_rate=self.sample_rate,
                audio_chunk_size=self.audio_chunk_size,
                params=self._params,
                bounds_sends=self._ws_params.write_timeout is not None,
                downstream_secs=self._ws_params.audio_out_downstream_secs,
                until_dry=self._audio_until_dry,
                on_stale_tail=self._drop_stale_tail,
            )
            sender.on_interrupted = self._count_discarded
            self._media_senders[destination] = sender
            self._lean_senders.append(sender)
            await sender.start(frame)
        await self.push_frame(OutputTransportReadyFrame(), FrameDirection.UPSTREAM)

    def _count_discarded(self, num_bytes: int):
        """Audio a sender discarded on an interruption, before it reached our write path."""
        self._ledger.count_interrupted(pcm_duration(num_bytes, *self._audio_format))

    def _audio_until_dry(self) -> float:
        return self._pace.ahead(asyncio.get_running_loop().time())

    def _drop_stale_tail(self, num_bytes: int):
        secs = pcm_duration(num_bytes, *self._audio_format)
        self._ledger.count_stale_tail(secs)
        logger.debug(
            f"{self}: the last {secs * 1000:.0f} ms of audio (less than a chunk) ended "
            "long before the EndFrame: dropped rather than played after a pause"
        )

    async def stop(self, frame: EndFrame):
        """Stop the output transport and disconnect from WebSocket.

        Queued audio and the end silence are sent first, then the serializer
        gets the ``EndFrame`` (telephony serializers hang up on it), then the
        connection closes with code 1000. A connection lost meanwhile is not
        redialed: the rest is dropped and the loss reported.

        Args:
            frame: The end frame signaling transport shutdown.
        """
        await self._session.call_ending()
        await super().stop(frame)
        if self._session.state is SessionState.IDLE:
            # No connection, none coming (the far end hung up, or the loss was
            # reported): nobody to hang up on.
            logger.debug(f"{self}: connection already ended, {frame} not sent")
        elif not isinstance(self._transport.serializer, ProtobufFrameSerializer):
            # Protobuf has no EndFrame (it would only log a warning).
            await self._write_frame(frame)
        else:
            async with self._send_lock:
                await self._flush_outage_locked()
        await self._disconnect()

    async def cancel(self, frame: CancelFrame):
        """Cancel the output transport and disconnect from WebSocket.

        Args:
            frame: The cancel frame signaling immediate cancellation.
        """
        await super().cancel(frame)
        await self._stop_traffic()
        if self._session.is_connected and not isinstance(
            self._transport.serializer, ProtobufFrameSerializer
        ):
            # Telephony protocols hang up on cancel too, but a peer that has
            # stopped reading must not hold the cancel up (write_timeout is 5 s).
            try:
                async with asyncio.timeout(CANCEL_HANGUP_TIMEOUT_SECS):
                    await self._write_frame(frame, urgent=True)
            except TimeoutError:
                logger.debug(
                    f"{self}: hang-up not taken within {CANCEL_HANGUP_TIMEOUT_SECS}s on cancel "
                    "(the peer is not reading): dropping the connection"
                )
                self._session.abort()
        await self._transport._release(self, close_timeout=CANCEL_CLOSE_TIMEOUT_SECS)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Process a frame; interruptions also go to the far end.

        Args:
            frame: The frame to process.
            direction: The direction of frame flow in the pipeline.
        """
        if isinstance(frame, InterruptionFrame):
            # Before anything else: from here on, no audio queued before the
            # interruption may leave, and the clear goes out first.
            self._interruption_id = frame.id
            self._ledger.interrupt(before_id=obj_id())
            self._pace.reset()
            await self._write_frame(frame, urgent=True)
            # What was played before it goes downstream before it.
            for sender in self._lean_senders:
                await sender.push_gathered()
        elif (
            frame.id < self._interruption_id
            and frame.interruptible
            and direction == FrameDirection.DOWNSTREAM
            and not isinstance(frame, SystemFrame)
        ):
            # Made before the last interruption, which overtook it in our input
            # queue (system frames go first): what the interruption would have
            # dropped had it been queued behind it. Audio is counted, never sent.
            if isinstance(frame, OutputAudioRawFrame):
                duration = pcm_duration(len(frame.audio), *self._audio_format)
                self._ledger.count_interrupted(duration)
            return
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
        end_silence = bool(frame.metadata.get(END_SILENCE_KEY))
        if not self._session.is_reconnecting and not await self._wait_connected():
            self._count_unsent(pcm_duration(len(frame.audio), *self._audio_format), end_silence)
            return False
        audio = frame.audio
        size = self.audio_chunk_size or len(audio)
        if len(audio) <= size:
            return await self._write_audio_chunk(frame, audio, end_silence)
        for offset in range(0, len(audio), size):
            if not await self._write_audio_chunk(frame, audio[offset : offset + size], end_silence):
                # The rest of a long frame (a DTMF tone, the end silence) goes the same way.
                rest = pcm_duration(max(0, len(audio) - offset - size), *self._audio_format)
                if rest and self._ledger.is_stale(frame.id, frame.interruptible):
                    self._count_interrupted(rest, end_silence)
                elif rest:
                    self._count_unsent(rest, end_silence)
                return False
        return True

    def _supports_native_dtmf(self) -> bool:
        return hooks.supports_native_dtmf(self._transport.serializer)

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

    async def _write_audio_chunk(
        self, frame: OutputAudioRawFrame, audio: bytes, end_silence: bool = False
    ) -> bool:
        sample_rate, channels = self._audio_format
        duration = pcm_duration(len(audio), sample_rate, channels)
        # The schedule runs during an outage too: audio is held at the pace
        # the pipeline produces it, and the oldest goes first past the bound.
        delay = self._pace.delay(asyncio.get_running_loop().time())
        # An interruption may reset the schedule while this chunk is written.
        schedule = self._pace.resets
        if delay > 0:
            await asyncio.sleep(delay)
        if self._ledger.is_stale(frame.id, frame.interruptible):
            self._count_interrupted(duration, end_silence)
            return False
        # Always a plain OutputAudioRawFrame: serializers match frame types
        # exactly, and the media sender's chunks keep their source's type
        # (a TTSAudioRawFrame, which Pipecat's protobuf serializer drops).
        chunk = OutputAudioRawFrame(audio=audio, sample_rate=sample_rate, num_channels=channels)
        held = HeldFrame(chunk, duration, frame.id, frame.interruptible, end_silence)
        async with self._send_lock:
            await self._flush_outage_locked()
            if self._ledger.must_hold(self._session.is_reconnecting):
                if end_silence:
                    # Not held in place of the bot's audio; its time still
                    # passes, which gives the redial its chance.
                    self._ledger.count_unsent_end_silence(duration)
                else:
                    self._outage.add(held)
            elif not await self._send_held(held) and not self._hold_after_failed_send(held):
                return False
        self._pace.sent(duration, resets=schedule)
        return True

    async def _send_held(self, held: HeldFrame) -> bool:
        """Serialize and send one frame now; audio gets its WAV header here."""
        frame = held.frame
        serializer = self._transport.serializer
        payload: hooks.Payload
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
            if self._ledger.is_stale(held.source_id, held.interruptible):
                self._count_interrupted(held.audio_secs, held.end_silence)
                return True
            # Our protocols may frame one chunk as several messages.
            for message in hooks.iter_messages(payload):
                if not await self._session.send(message):
                    return False
        if held.audio_secs:
            self._ledger.count_sent_audio(held.audio_secs, end_silence=held.end_silence)
        return True

    def _hold_after_failed_send(self, held: HeldFrame) -> bool:
        """Hold a frame whose send failed when the connection may come back; else count it."""
        if not held.end_silence and self._session.may_come_back:
            self._outage.add(held)
            return True
        self._count_unsent(held.audio_secs, held.end_silence)
        return False

    async def _flush_outage_locked(self):
        """Send what was held during an outage, in order, audio paced (lock held)."""
        if not self._outage or not self._session.is_connected:
            return
        loop = asyncio.get_running_loop()
        for held in self._outage.drain():
            schedule = 0
            if held.audio_secs:
                delay = self._pace.delay(loop.time())
                schedule = self._pace.resets
                if delay > 0:
                    await asyncio.sleep(delay)
            if not await self._send_held(held):
                # Lost again: keep it first in line for the next connection.
                self._outage.requeue(held)
                if not self._session.may_come_back:
                    self._outage.drop_all()
                break
            if held.audio_secs:
                self._pace.sent(held.audio_secs, resets=schedule)
        self._report_outage_drops()

    def schedule_flush(self):
        """Send what was held during the outage, in the background (connection is back)."""
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = self.create_task(self._flush_task_handler(), "flush")

    async def _flush_task_handler(self):
        async with self._send_lock:
            await self._flush_outage_locked()
        self._report_outage_drops()

    async def _stop_traffic(self):
        """Send nothing more: the flush stops, what is held is counted as dropped."""
        if self._flush_task is not None:
            task, self._flush_task = self._flush_task, None
            await self.cancel_task(task)
        self.abandon_outage()

    def abandon_outage(self):
        """The connection is not coming back: count what is held as dropped."""
        self._log_outage_drops(self._ledger.abandon_outage())

    def _report_outage_drops(self):
        self._log_outage_drops(self._ledger.take_outage_report())

    def _log_outage_drops(self, report: DropReport | None):
        if report:
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

    def _count_interrupted(self, audio_secs: float, end_silence: bool):
        if end_silence:
            self._ledger.count_unsent_end_silence(audio_secs)
        else:
            self._ledger.count_interrupted(audio_secs)

    def _count_unsent(self, audio_secs: float, end_silence: bool):
        """Audio that could not be sent nor held: dropped, unless it is end silence.

        End silence not sent is no loss: the bot's audio before it has gone
        out (or was counted), so it is counted apart and not warned about.
        """
        if not end_silence:
            self._count_dropped(audio_secs)
            return
        self._ledger.count_unsent_end_silence(audio_secs)
        logger.debug(
            f"{self}: {audio_secs:.2f}s of end silence not sent: no connection to "
            f"{self._session.uri} any more"
        )

    def _count_dropped(self, audio_secs: float):
        if self._ledger.count_dropped(audio_secs, asyncio.get_running_loop().time()) is not None:
            stats = self._ledger.stats
            logger.warning(
                f"{self}: not connected to {self._session.uri}, dropping output "
                f"({stats.dropped_frames} frames, "
                f"{stats.dropped_audio_secs:.2f}s of audio dropped so far)"
            )
