#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The bot's turns transcribed: :class:`Transcriber` runs a Pipecat STT service on a segment.

Example::

    transcriber = Transcriber()                     # Whisper, base.en by default
    text = await transcriber.transcribe(bot_pcm, 8000)

Another service plugs in as a factory, e.g.
``Transcriber(lambda: DeepgramSTTService(api_key=...))``. The default Whisper
model is loaded once per process by :mod:`pipecat_wsclient.scenario.whisper_models`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.stt_service import STTService

from pipecat_wsclient.audio.resample import resample
from pipecat_wsclient.scenario.service_run import DEFAULT_TIMEOUT_SECS, SpeechError, run_alone
from pipecat_wsclient.scenario.whisper_models import (
    load_whisper,
    resolve_stt_model,
    whisper_factory,
)

AUDIO_CHUNK_SECS = 0.020  # the transcriber feeds audio as a transport would, 20 ms at a time


class Transcriber:
    """Transcribes audio with a Pipecat STT service, one transcription at a time.

    Each :meth:`transcribe` runs a fresh service from the factory on one
    segment of speech (as a VAD would mark it). The default is Pipecat's
    ``WhisperSTTService`` on the CPU (int8); its model is loaded once per
    process and shared by all transcriptions.
    """

    def __init__(
        self,
        stt: Callable[[], STTService] | None = None,
        *,
        model: str | os.PathLike[str] | None = None,
        sample_rate: int = 16000,
        timeout: float | None = DEFAULT_TIMEOUT_SECS,
    ):
        """Initialize the transcriber (loads no model yet).

        Args:
            stt: Makes a fresh STT service; ``None`` for Whisper.
            model: The Whisper model, when ``stt`` is ``None``: a faster-whisper
                name (downloaded on first use) or a local model folder; ``None``
                for ``$PIPECAT_WSCLIENT_STT_MODEL`` or ``base.en``.
            sample_rate: The rate the service hears (Whisper needs 16000);
                audio at another rate is resampled to it.
            timeout: Seconds one transcription may take, the model's loading
                (or download) aside; ``None`` for no limit.
        """
        self._factory = stt
        self.model: str | None = resolve_stt_model(model) if stt is None else None
        self.sample_rate = sample_rate
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        """Load the Whisper model now, before any call, so a missing one fails first.

        Nothing to do with a custom ``stt`` factory.

        Raises:
            SpeechError: If the model cannot be loaded (one line, what to do).
        """
        if self.model is not None:
            await asyncio.to_thread(load_whisper, self.model)

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """Transcribe one stretch of speech.

        Args:
            pcm: 16-bit mono PCM.
            sample_rate: Its sample rate.

        Returns:
            The transcripts the service produced, joined by spaces (``""`` for
            none, and for no audio).

        Raises:
            SpeechError: If the service cannot be made (e.g. the Whisper model
                cannot be loaded), fails (its ``ErrorFrame``) or takes longer
                than the timeout.
        """
        pcm = pcm[: len(pcm) // 2 * 2]
        if not pcm:
            return ""
        async with self._lock:
            factory = self._factory or await self._whisper_factory()
            try:
                service = factory()
            except Exception as e:
                raise SpeechError(f"cannot make the STT service: {e}") from e
            pcm = resample(pcm, sample_rate, self.sample_rate)
            chunk = int(self.sample_rate * AUDIO_CHUNK_SECS) * 2
            audio: list[Frame] = [
                InputAudioRawFrame(pcm[i : i + chunk], self.sample_rate, 1)
                for i in range(0, len(pcm), chunk)
            ]
            seconds = len(pcm) / 2 / self.sample_rate
            frames = await run_alone(
                service,
                [VADUserStartedSpeakingFrame(), *audio, VADUserStoppedSpeakingFrame(), EndFrame()],
                PipelineParams(audio_in_sample_rate=self.sample_rate),
                collect=(TranscriptionFrame,),
                timeout=self.timeout,
                what=f"the transcript of {seconds:.2f} s of audio",
            )
        texts = (f.text.strip() for f in frames if isinstance(f, TranscriptionFrame))
        return " ".join(t for t in texts if t)

    async def _whisper_factory(self) -> Callable[[], STTService]:
        """Load the Whisper model (in a thread: it may be downloaded) and make the factory."""
        return await asyncio.to_thread(whisper_factory, self.model or resolve_stt_model())
