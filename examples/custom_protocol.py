"""Write your own protocol: a serializer with a hello, a life of its own and DTMF.

A JSON protocol, invented for this example: every message is a JSON object
with an ``event``. The serializer implements the optional hooks of
``pipecat_wsclient.SerializerHooks`` besides Pipecat's ``FrameSerializer``:

- ``session_start_messages()``: a hello, sent first on every (re)connection;
- ``attach(io)``: keeps the ``ProtocolIO`` to answer the server's pings at
  once, ahead of queued audio;
- ``serialize()`` returning a list: ``EndFrame`` becomes two messages;
- ``supports_native_dtmf = True``: ``OutputDTMFFrame`` goes on the wire as
  an event instead of being played as tones.

Use it as any serializer::

    transport = WebsocketClientTransport(uri, WebsocketClientParams(
        audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False,
        serializer=JsonEventSerializer(),
    ))
"""

from __future__ import annotations

import base64
import json

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
)
from pipecat.serializers.base_serializer import FrameSerializer

from pipecat_wsclient import ProtocolIO
from pipecat_wsclient.hooks import Payload


class JsonEventSerializer(FrameSerializer):
    """Audio as base64 in JSON events, with a hello, pings answered and DTMF events."""

    supports_native_dtmf = True

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self._rate = sample_rate
        self._io: ProtocolIO | None = None

    async def session_start_messages(self) -> list[str | bytes]:
        return [json.dumps({"event": "hello", "sample_rate": self._rate})]

    async def attach(self, io: ProtocolIO) -> None:
        self._io = io

    async def serialize(self, frame: Frame) -> Payload:
        if isinstance(frame, OutputAudioRawFrame):
            pcm = base64.b64encode(frame.audio).decode()
            return json.dumps({"event": "audio", "pcm": pcm})
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"event": "clear"})
        if isinstance(frame, OutputDTMFFrame | OutputDTMFUrgentFrame):
            return json.dumps({"event": "dtmf", "digit": frame.button.value})
        if isinstance(frame, EndFrame):
            return [json.dumps({"event": "flush"}), json.dumps({"event": "bye"})]
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        message = json.loads(data)
        if message["event"] == "ping" and self._io is not None:
            await self._io.send(json.dumps({"event": "pong", "id": message["id"]}))
            return None
        if message["event"] == "audio":
            return InputAudioRawFrame(
                audio=base64.b64decode(message["pcm"]), sample_rate=self._rate, num_channels=1
            )
        return None
