#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio for the test server: callers' messages to PCM, and the answer tone.

Decoding goes through the protocol's own serializer (from the registry in
:mod:`pipecat_wsclient.protocols.registry`); this module only brings what comes
out to the server's format: 16-bit mono PCM at its sample rate.
"""

from __future__ import annotations

import numpy as np
from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame
from pipecat.serializers.base_serializer import FrameSerializer
from websockets.typing import Data

from pipecat_wsclient.audio.resample import StreamResampler
from pipecat_wsclient.audio.wav import float_to_pcm, pcm_to_float
from pipecat_wsclient.protocols import RawPCMSerializer

TONE_AMPLITUDE = 0.3
"""Peak amplitude of the answer tone (full scale is 1)."""

FADE_SECS = 0.01
"""Fade in and out of the answer tone, so it starts and ends without a click."""


def make_tone(secs: float, hz: float, rate: int, amplitude: float = TONE_AMPLITUDE) -> bytes:
    """A sine tone with a short linear fade in and out, as 16-bit PCM.

    Args:
        secs: Length.
        hz: Frequency.
        rate: Sample rate.
        amplitude: Peak amplitude (full scale is 1).

    Returns:
        The tone, 16-bit mono PCM at ``rate``.
    """
    n = max(1, round(secs * rate))
    t = np.arange(n, dtype=np.float64) / rate
    samples = amplitude * np.sin(2 * np.pi * hz * t)
    fade = min(int(FADE_SECS * rate), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        samples[:fade] *= ramp
        samples[n - fade :] *= ramp[::-1]
    return float_to_pcm(samples)


class InboundAudio:
    """One connection's decoder: messages in, 16-bit mono PCM at the server's rate out.

    Text messages and frames that are not audio are ignored (logged at debug
    level), as are messages the serializer cannot decode. Raw PCM is a byte
    stream: a message may end inside a sample, whose rest starts the next.
    Audio at another rate is resampled with a streaming resampler, whose
    filter delay :meth:`flush` returns at the end.
    """

    def __init__(self, serializer: FrameSerializer, rate: int):
        """Initialize the decoder.

        Args:
            serializer: The protocol's serializer (its ``deserialize`` is used).
            rate: The server's sample rate.
        """
        self._serializer = serializer
        self._rate = rate
        self._byte_stream = isinstance(serializer, RawPCMSerializer)
        self._odd_byte = b""
        self._resampler: StreamResampler | None = None

    async def decode(self, message: Data) -> bytes:
        """The caller's audio in a message (``b""`` if there is none)."""
        if isinstance(message, str):
            logger.debug(f"VoiceServer: ignoring a text message ({len(message)} chars)")
            return b""
        if self._byte_stream:
            data = self._odd_byte + message
            whole = len(data) & ~1
            self._odd_byte, message = data[whole:], data[:whole]
            if not message:
                return b""
        try:
            frame = await self._serializer.deserialize(message)
        except Exception as e:
            logger.debug(f"VoiceServer: ignoring an undecodable message: {e}")
            return b""
        if not isinstance(frame, InputAudioRawFrame):
            logger.debug(f"VoiceServer: ignoring {type(frame).__name__}")
            return b""
        return self._normalize(frame.audio, frame.sample_rate, frame.num_channels)

    def flush(self) -> bytes:
        """What the resampler still holds (its filter delay), if one was used."""
        return b"" if self._resampler is None else self._resampler.flush()

    def _normalize(self, pcm: bytes, rate: int, channels: int) -> bytes:
        """Bring audio to mono at the server's rate (streaming resampling when needed)."""
        rate = rate or self._rate
        channels = max(1, channels)
        pcm = pcm[: len(pcm) // (2 * channels) * (2 * channels)]
        if channels > 1:
            pcm = float_to_pcm(pcm_to_float(pcm).reshape(-1, channels).mean(axis=1))
        if rate == self._rate:
            return pcm
        if self._resampler is None or self._resampler.from_rate != rate:
            logger.debug(f"VoiceServer: resampling {rate} Hz to {self._rate} Hz")
            self._resampler = StreamResampler(rate, self._rate)
        return self._resampler.resample(pcm)
