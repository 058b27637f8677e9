#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The caller's turns spoken: :class:`Synthesizer` runs a Pipecat TTS service, cached.

Example::

    synthesizer = Synthesizer()                     # eSpeak NG, cached WAV files
    pcm = await synthesizer.synthesize("Hi, when are you open?", 16000)

Another service plugs in as a factory, e.g.
``Synthesizer(lambda: CartesiaTTSService(api_key=...), cache_key="cartesia-sonic")``.
The cache is :mod:`pipecat_wsclient.scenario.tts_cache`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pipecat.frames.frames import EndFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.tts_service import TTSService

from pipecat_wsclient.audio.resample import resample
from pipecat_wsclient.scenario.espeak import (
    DEFAULT_VOICE,
    DEFAULT_WORDS_PER_MINUTE,
    EspeakTTSService,
)
from pipecat_wsclient.scenario.service_run import DEFAULT_TIMEOUT_SECS, SpeechError, run_alone
from pipecat_wsclient.scenario.tts_cache import (
    WavCache,
    default_cache_dir,
    espeak_voice,
    service_voice,
    speech_key,
)


class Synthesizer:
    """Speaks text with a Pipecat TTS service, keeping what it said in a cache.

    Each :meth:`synthesize` that misses the cache runs a fresh service from
    the factory. The cache is a folder of WAV files named by the SHA-256 of the
    voice (``cache_key``, or the service class and its settings), the text and
    the sample rate; a hit builds no service. A custom service whose settings
    have no stable ``repr`` is not cached unless it is given a ``cache_key``.
    """

    def __init__(
        self,
        tts: Callable[[], TTSService] | None = None,
        *,
        cache_dir: Path | None = None,
        cache_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_SECS,
    ):
        """Initialize the synthesizer (builds no service yet).

        Args:
            tts: Makes a fresh TTS service; ``None`` for eSpeak NG's default voice.
            cache_dir: Folder of cached WAV files; ``None`` for
                :func:`default_cache_dir`. An unwritable folder only turns off
                caching (with one warning).
            cache_key: Names the voice in cache keys: give one for a service
                whose class and settings do not say everything (e.g. a cloned
                voice); when the voice changes, change the key.
            timeout: Seconds one synthesis may take; ``None`` for no limit.
        """
        self._factory: Callable[[], TTSService] = tts or EspeakTTSService
        self._cache = WavCache(cache_dir or default_cache_dir())
        self._voice: str | None = cache_key
        self._voice_known = cache_key is not None
        if tts is None and cache_key is None:
            self._voice = espeak_voice(DEFAULT_VOICE, DEFAULT_WORDS_PER_MINUTE)
            self._voice_known = True
        self.timeout = timeout

    @property
    def cache_dir(self) -> Path:
        """The folder of cached WAV files."""
        return self._cache.folder

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        """Speak ``text``.

        Args:
            text: What to say.
            sample_rate: The sample rate of the audio returned.

        Returns:
            16-bit mono PCM at ``sample_rate``.

        Raises:
            SpeechError: If the service fails (its ``ErrorFrame``), yields no
                audio, or takes longer than the timeout.
        """
        service: TTSService | None = None
        if not self._voice_known:
            service = self._new_service(text)
            self._voice = service_voice(service)
            self._voice_known = True
        key = None if self._voice is None else speech_key(self._voice, text, sample_rate)
        if key is not None and (cached := self._cache.get(key, sample_rate)) is not None:
            return cached

        service = service or self._new_service(text)
        what = f"speech for {_quote(text)}"
        frames = await run_alone(
            service,
            [TTSSpeakFrame(text), EndFrame()],
            PipelineParams(audio_out_sample_rate=sample_rate),
            collect=(TTSAudioRawFrame,),
            timeout=self.timeout,
            what=what,
        )
        pcm = _join_audio([f for f in frames if isinstance(f, TTSAudioRawFrame)], sample_rate, what)
        if not pcm:
            raise SpeechError(f"{what}: {type(service).__name__} produced no audio")
        if key is not None:
            self._cache.put(key, pcm, sample_rate)
        return pcm

    def _new_service(self, text: str) -> TTSService:
        try:
            return self._factory()
        except Exception as e:
            raise SpeechError(f"speech for {_quote(text)}: cannot make the TTS service: {e}") from e


def _join_audio(frames: Sequence[TTSAudioRawFrame], sample_rate: int, what: str) -> bytes:
    """The frames' audio, one stretch at ``sample_rate`` (runs at other rates resampled)."""
    runs: list[tuple[int, bytearray]] = []
    for frame in frames:
        if frame.num_channels != 1:
            raise SpeechError(f"{what}: {frame.num_channels}-channel audio (only mono is handled)")
        if not runs or runs[-1][0] != frame.sample_rate:
            runs.append((frame.sample_rate, bytearray()))
        runs[-1][1].extend(frame.audio)
    return b"".join(resample(bytes(pcm), rate, sample_rate) for rate, pcm in runs)


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
