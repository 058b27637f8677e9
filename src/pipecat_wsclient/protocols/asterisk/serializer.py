#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The Asterisk serializer: chan_websocket's media protocol for the client transport.

It wires the control codec (:mod:`.control`), the flow control
(:mod:`.flow`), the media codecs (:mod:`.codec`) and the shared audio
helpers, and runs the task that releases held audio. What it does, and the
sources cited as [WS-DOC] and [WS-SRC]: ``docs/asterisk.md``.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)

from pipecat_wsclient.hooks import Payload
from pipecat_wsclient.protocols.asterisk.codec import CODECS, MAX_MESSAGE_BYTES, AsteriskCodec
from pipecat_wsclient.protocols.asterisk.control import (
    ORDERED_COMMANDS,
    ControlFormat,
    ControlMessage,
    MediaStart,
    command_text,
    parse_control,
)
from pipecat_wsclient.protocols.asterisk.flow import (
    DEFAULT_MAX_QUEUED_FRAMES,
    DEFAULT_RESUME_QUEUED_FRAMES,
    QUEUE_LENGTH_MAX,
)
from pipecat_wsclient.protocols.asterisk.outbound import AsteriskOutbound
from pipecat_wsclient.protocols.asterisk.stats import AsteriskStats
from pipecat_wsclient.protocols.audio import Resampler
from pipecat_wsclient.throttle import LogThrottle

MAX_PTIME_MS = 1000
"""Longest ptime we accept in ``MEDIA_START`` (Asterisk's codecs use 10 to a few hundred ms)."""

EventHandler = Callable[[ControlMessage], "Awaitable[None] | None"]
"""Called with every control event received (sync or async)."""


class AsteriskSerializer(AsteriskOutbound):
    """Speak chan_websocket's media protocol as the app that dials Asterisk.

    Example::

        serializer = AsteriskSerializer()
        transport = WebsocketClientTransport(
            asterisk_media_uri("ws://pbx:8088", connection_id),
            asterisk_params(serializer),
        )

    ``docs/asterisk.md`` describes the Asterisk side and the behaviour.
    """

    supports_native_dtmf = False
    """chan_websocket has no command to send DTMF; Pipecat plays tones instead."""

    task_name = "asterisk"

    def __init__(
        self,
        *,
        control_format: Literal["auto", "plain-text", "json"] = "auto",
        media_buffering: bool = False,
        answer: bool = False,
        max_queued_frames: int | None = DEFAULT_MAX_QUEUED_FRAMES,
        resume_queued_frames: int = DEFAULT_RESUME_QUEUED_FRAMES,
        max_held_secs: float | None = 60.0,
        tail_flush_secs: float = 0.25,
        end_timeout_secs: float = 10.0,
        on_event: EventHandler | None = None,
    ):
        """Initialize the serializer.

        Args:
            control_format: Format of the commands we send. ``"auto"`` uses
                the format ``MEDIA_START`` arrived in (Asterisk expects
                commands in the channel's configured format [WS-SRC
                ``handle_command``]). Received messages are always
                auto-detected.
            media_buffering: Wrap each stretch of bot audio in
                ``START_MEDIA_BUFFERING`` / ``STOP_MEDIA_BUFFERING <id>``.
            answer: Send ``ANSWER`` after ``MEDIA_START`` (for channels dialed
                with ``n``, "don't auto-answer" [WS-DOC]).
            max_queued_frames: Most frames we let Asterisk's queue hold by our
                estimate; None relies on MEDIA_XOFF alone (audio sent while an
                XOFF is in flight may then be dropped by Asterisk).
            resume_queued_frames: The bound after the first ``MEDIA_XOFF``.
            max_held_secs: Most bot audio held (oldest dropped beyond), while
                Asterisk is paused or its queue is full and before
                ``MEDIA_START``; None for no bound.
            tail_flush_secs: After this long without bot audio, send the last
                partial frame padded with silence (and ``STOP_MEDIA_BUFFERING``).
            end_timeout_secs: On ``EndFrame``, how long to wait for held
                audio to go out and Asterisk's queue to play out before
                ``HANGUP``; 0 hangs up at once.
            on_event: Called with every control event received.
        """
        super().__init__()
        if control_format not in ("auto", "plain-text", "json"):
            raise ValueError(f"control_format must be auto, plain-text or json: {control_format!r}")
        if max_queued_frames is not None and max_queued_frames < 1:
            raise ValueError("max_queued_frames must be >= 1 or None")
        self._control_format = control_format
        self._media_buffering = media_buffering
        self._answer = answer
        self._max_queued_frames = max_queued_frames
        self._resume_queued_frames = max(1, resume_queued_frames)
        self._max_held_secs = max_held_secs
        self._tail_flush_secs = tail_flush_secs
        self._end_timeout_secs = end_timeout_secs
        self._on_event = on_event

        self._correlation = itertools.count(1)
        self._generation = 0
        self.stats = AsteriskStats()
        self._pre_start_log = LogThrottle()
        self._event_logs: dict[str, LogThrottle] = {}
        self.events: deque[ControlMessage] = deque(maxlen=200)
        self._reset_stream()

    # -- state ------------------------------------------------------------------

    def _reset_stream(self) -> None:
        """Forget the previous stream (a new connection is a new stream)."""
        self._start: MediaStart | None = None
        self._codec: AsteriskCodec | None = None
        self._tx_format: ControlFormat = (
            "plain-text" if self._control_format == "auto" else self._control_format
        )
        self._reset_outbound()
        self._ended = False
        self._unsupported = None
        self._generation += 1  # Whatever was being encoded belongs to the old stream.
        self._in_resampler = Resampler()

    @property
    def media_start(self) -> MediaStart | None:
        """The current stream's ``MEDIA_START``, once received."""
        return self._start

    @property
    def codec(self) -> AsteriskCodec | None:
        """The current stream's codec, once ``MEDIA_START`` has arrived."""
        return self._codec

    @property
    def control_format(self) -> ControlFormat:
        """The format our commands are written in."""
        return self._tx_format

    # -- FrameSerializer --------------------------------------------------------

    async def session_start_messages(self) -> list[str | bytes]:
        """A new connection is a new stream: forget the old one. The app sends nothing first."""
        self._drop_held("a new connection")
        self._reset_stream()
        return []

    async def serialize(self, frame: Frame) -> Payload:  # type: ignore[override]
        """Bot audio as BINARY messages (possibly held), and the commands.

        Returns a single message at most, so that it is written before
        anything held can be released behind it; the rest waits in order.
        """
        if isinstance(frame, OutputAudioRawFrame):
            return await self._serialize_audio(frame)
        if isinstance(frame, InterruptionFrame):
            return self._interrupt()
        if isinstance(frame, EndFrame):
            return await self._end()
        if isinstance(frame, CancelFrame):
            return self._cancel()
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            return self._serialize_message(frame)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Caller audio as ``InputAudioRawFrame``; events handled, ``DTMF_END`` as a frame.

        Raises:
            ValueError: For media before ``MEDIA_START`` or in a format we
                cannot decode, and for unparseable control messages.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            return await self._deserialize_media(bytes(data))
        message = parse_control(data)
        return await self._handle_event(message)

    # -- commands ---------------------------------------------------------------

    def format_command(self, name: str, **params: Any) -> str:
        """A command in the stream's control format.

        Raises:
            ValueError: If the name is not a command or the text would be
                longer than Asterisk reads (:data:`MAX_COMMAND_BYTES`).
        """
        return command_text(name, params, fmt=self._tx_format)

    async def send_command(self, name: str, **params: Any) -> bool:
        """Send a command, e.g. ``send_command("GET_STATUS")``.

        ``MARK_MEDIA``, ``START/STOP_MEDIA_BUFFERING`` and
        ``REPORT_QUEUE_DRAINED`` refer to the audio sent before them, so
        they wait behind audio being held; the others go at once.

        Returns:
            False if the stream has not started (no ``MEDIA_START`` yet) or
            the connection is gone.
        """
        if self._codec is None or self._io is None:
            return False
        text = self.format_command(name, **params)
        if name in ORDERED_COMMANDS and self._flow.holding:
            self._enqueue(text)
            return True
        return bool(await self._io.send(text))

    async def request_status(self) -> bool:
        """Ask for a ``STATUS`` event (``GET_STATUS``); see ``stats.last_status``."""
        return await self.send_command("GET_STATUS")

    def _serialize_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> str | list[str | bytes] | None:
        message = frame.message
        if self.should_ignore_frame(frame) or not isinstance(message, dict):
            return None
        name = message.get("command")
        if not isinstance(name, str) or self._codec is None:
            return None
        params = {k: v for k, v in message.items() if k != "command"}
        try:
            text = self.format_command(name, **params)
        except ValueError as e:
            logger.warning(f"{self}: not sending {message}: {e}")
            return None
        if self._flow.holding and isinstance(frame, OutputTransportMessageFrame):
            self._enqueue(text)  # In its place behind the held audio.
            return []
        return text

    # -- caller audio and events -------------------------------------------------

    async def _deserialize_media(self, data: bytes) -> Frame | None:
        codec = self._codec
        if codec is None:
            raise ValueError(
                self._unsupported or "media before MEDIA_START (the format is not known yet)"
            )
        pcm = await self._to_pipeline_rate(codec.decode(data), codec.sample_rate)
        if not pcm:
            return None
        return InputAudioRawFrame(pcm, self._pipeline_in_rate, 1)

    async def _handle_event(self, message: ControlMessage) -> Frame | None:
        self.events.append(message)
        self.stats.events[message.name] += 1
        name = message.name
        frame: Frame | None = None
        if name == "MEDIA_START":
            await self._on_media_start(message)
        elif name == "MEDIA_XOFF":
            self._on_xoff()
        elif name == "MEDIA_XON":
            await self._on_xon()
        elif name == "DTMF_END":
            frame = self._on_dtmf(message)
        elif name == "STATUS":
            self._on_status(message)
        elif name == "ERROR":
            text = str(message.get("error_text", ""))
            self.stats.add_error(text)
            self._log_limited("error", "WARNING", f"Asterisk reported an error: {text}")
        elif name in ("MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED", "QUEUE_DRAINED"):
            logger.debug(f"{self}: {name} {message.params}")
        else:
            logger.debug(f"{self}: unknown control message {name} {message.params}")
        if self._on_event is not None:
            result = self._on_event(message)
            if inspect.isawaitable(result):
                await result
        return frame

    async def _on_media_start(self, message: ControlMessage) -> None:
        start = MediaStart.from_message(message)
        self.stats.media_starts += 1
        self._start = start
        if self._control_format == "auto":
            self._tx_format = message.format
        codec = CODECS.get(start.format)
        if codec is None:
            self._unsupported = f"unsupported chan_websocket format {start.format!r}"
            self._log_limited(
                "unsupported",
                "ERROR",
                f"{self._unsupported}; use one of {', '.join(CODECS)} in the dial string",
            )
            self._drop_held(self._unsupported)
            return
        frame_bytes = start.optimal_frame_size or codec.frame_bytes(start.ptime or 20)
        if frame_bytes % codec.sample_width or frame_bytes > MAX_MESSAGE_BYTES:
            self._unsupported = (
                f"optimal_frame_size {frame_bytes} is not whole samples "
                f"of at most {MAX_MESSAGE_BYTES} bytes"
            )
            self._log_limited("unsupported", "ERROR", self._unsupported)
            return
        ptime_ms = start.ptime or 1000 * frame_bytes / (codec.sample_rate * codec.sample_width)
        if not 0 < ptime_ms <= MAX_PTIME_MS:
            self._unsupported = f"ptime {ptime_ms:g} ms is not in (0, {MAX_PTIME_MS}]"
            self._log_limited("unsupported", "ERROR", self._unsupported)
            return
        self._unsupported = None
        # Asterisk sends no media while the caller is silent: flush what the
        # inbound resampler holds after three ptimes without any.
        self.input_flush_secs = 3 * ptime_ms / 1000
        self._flow.start(
            frame_bytes=frame_bytes,
            ptime=ptime_ms / 1000,
            sample_rate=codec.sample_rate,
            sample_width=codec.sample_width,
        )
        self._codec = codec
        logger.info(
            f"{self}: MEDIA_START {start.channel} ({start.connection_id}): {codec.name} "
            f"{codec.sample_rate} Hz, {frame_bytes}-byte frames every {ptime_ms:g} ms, "
            f"{message.format} control messages"
        )
        if self._answer and self._io is not None:
            await self._io.send(self.format_command("ANSWER"))
        # Audio the bot produced before MEDIA_START goes first, in order.
        while self._pre_start:
            frame = self._take_before_start()
            messages = await self._encode(frame.audio, frame.sample_rate)
            if messages and self._media_buffering and not self._bulk_open:
                self._bulk_open = True
                self._enqueue(self.format_command("START_MEDIA_BUFFERING"))
            for encoded in messages:
                self._enqueue(encoded)
        await self._release_held()

    def _on_xoff(self) -> None:
        self.stats.xoff += 1
        self._flow.on_xoff(time.monotonic())
        logger.debug(f"{self}: MEDIA_XOFF, holding audio")

    async def _on_xon(self) -> None:
        self.stats.xon += 1
        self.stats.paused_secs += self._flow.on_xon(time.monotonic())
        logger.debug(f"{self}: MEDIA_XON, releasing {self.held_audio_secs:.2f}s of held audio")
        await self._release_held()

    def _on_dtmf(self, message: ControlMessage) -> Frame | None:
        digit = str(message.get("digit", ""))
        try:
            button = KeypadEntry(digit)
        except ValueError:
            self.stats.dtmf_ignored += 1
            self._log_limited(
                "dtmf", "WARNING", f"ignoring DTMF digit {digit!r} (no Pipecat key for it)"
            )
            return None
        self.stats.dtmf += 1
        return InputDTMFFrame(button)

    def _on_status(self, message: ControlMessage) -> None:
        self.stats.last_status = dict(message.params)
        xon = message.get("xon_level")
        if isinstance(xon, int) and 0 < xon <= QUEUE_LENGTH_MAX:
            self._flow.xon_level = xon  # Where MEDIA_XON re-anchors our queue estimate.
        logger.info(f"{self}: STATUS {message.params}")

    def _log_limited(self, kind: str, level: str, what: str) -> None:
        """Log about a received event at most every 5 s per ``kind``, not once per event.

        For Asterisk's ERROR events, ignored DTMF and an unsupported ``MEDIA_START``:
        a peer that sends many must not flood the log.
        """
        suppressed = self._event_logs.setdefault(kind, LogThrottle()).allow(time.monotonic())
        if suppressed is not None:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            logger.log(level, f"{self}: {what}{more}")
