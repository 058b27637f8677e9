#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Raw PCM over WebSocket: binary messages are audio, text messages are JSON."""

from __future__ import annotations

import json

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

from pipecat_wsclient import peer_json


class RawPCMSerializer(FrameSerializer):
    """The simplest voice protocol: 16-bit PCM in binary messages, JSON in text ones.

    Outbound audio is sent as is (the transport has already brought it to its
    output rate); inbound binary messages become ``InputAudioRawFrame`` at
    ``sample_rate`` (default: the pipeline's input rate). Text messages must
    be JSON and become ``InputTransportMessageFrame``; anything else raises
    ``ValueError`` (the transport counts it as a decode error).
    """

    def __init__(self, sample_rate: int | None = None, num_channels: int = 1):
        """Initialize the serializer.

        Args:
            sample_rate: Rate of inbound audio; ``None`` uses the pipeline's.
            num_channels: Channels of inbound audio.
        """
        super().__init__()
        self._sample_rate = sample_rate or 0
        self._num_channels = num_channels

    async def setup(self, setup: FrameProcessorSetup):  # type: ignore[override]
        """Take the pipeline's input rate unless one was given."""
        if not self._sample_rate:
            self._sample_rate = setup.audio_in_sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Audio as bytes, transport messages as JSON text, other frames not at all."""
        if isinstance(frame, OutputAudioRawFrame):
            return bytes(frame.audio)
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            if self.should_ignore_frame(frame):
                return None
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Bytes as audio, text as a JSON transport message.

        Raises:
            ValueError: If a text message is not JSON (or nests deeper than
                :data:`~pipecat_wsclient.peer_json.MAX_DEPTH`), or audio is not
                whole samples.
        """
        if isinstance(data, bytes):
            if len(data) % (2 * self._num_channels):
                raise ValueError(f"{len(data)} bytes is not whole 16-bit samples")
            return InputAudioRawFrame(data, self._sample_rate, self._num_channels)
        return InputTransportMessageFrame(message=peer_json.loads(data))
