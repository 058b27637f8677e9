#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""eSpeak NG as a Pipecat TTS service: offline speech with no system package.

The library and its voice data come from the ``espeakng-loader`` wheel; this
module binds the few C calls synthesis needs (``espeak_Initialize``,
``espeak_SetVoiceByName``, ``espeak_SetParameter``, ``espeak_Synth``) with
``ctypes``. eSpeak NG keeps global state and is not thread-safe, so every
synthesis holds one process-wide lock; it runs in a worker thread so the event
loop keeps its timing.

Example::

    tts = EspeakTTSService(voice="en-us", words_per_minute=165)
    pipeline = Pipeline([..., tts, transport.output()])
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven, assert_given

from pipecat_wsclient.audio.resample import resample

DEFAULT_VOICE = "en-us"
DEFAULT_WORDS_PER_MINUTE = 150
"""Slower than eSpeak NG's 175: over 8 kHz telephone audio, Whisper tiny.en heard "nine to
five" in 30 of 30 syntheses at 140-150, 25-26 of 30 at 165."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_ENDPAUSE = 0x1000
_ESPEAK_RATE = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakUnavailable(RuntimeError):
    """eSpeak NG cannot be loaded (the ``espeakng-loader`` package is missing or broken)."""


class _Espeak:
    """The loaded library: one per process, used under :attr:`lock`."""

    lock = threading.Lock()
    _instance: _Espeak | None = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise EspeakUnavailable(
                "eSpeak NG speech needs the espeakng-loader package: "
                "pip install 'pipecat-wsclient[test]'"
            ) from e
        try:
            self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path().encode()
        except (OSError, RuntimeError) as e:
            raise EspeakUnavailable(f"cannot load eSpeak NG from espeakng-loader: {e}") from e
        lib = self._lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise EspeakUnavailable(f"espeak_Initialize failed ({self.sample_rate})")
        self._chunks: list[bytes] = []

        def collect(wav, count, _events):
            if wav and count > 0:
                self._chunks.append(ctypes.string_at(wav, count * 2))
            return 0

        self._callback = _SYNTH_CALLBACK(collect)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Espeak:
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synthesize(self, text: str, voice: str, words_per_minute: int) -> bytes:
        """Speak ``text``; 16-bit mono PCM at :attr:`sample_rate`. Blocking."""
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
            self._chunks = []
            data = text.encode() + b"\0"
            status = self._lib.espeak_Synth(
                data,
                len(data),
                0,
                _POS_CHARACTER,
                0,
                _ESPEAK_CHARS_UTF8 | _ESPEAK_ENDPAUSE,
                None,
                None,
            )
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed ({status})")
            pcm, self._chunks = b"".join(self._chunks), []
            return pcm


def espeak_synthesize(
    text: str, *, voice: str = DEFAULT_VOICE, words_per_minute: int = DEFAULT_WORDS_PER_MINUTE
) -> tuple[bytes, int]:
    """Speak ``text`` with eSpeak NG, blocking (run it in a thread from async code).

    Args:
        text: What to say.
        voice: An eSpeak NG voice name, e.g. ``en-us``, ``en`` (British), ``de``.
        words_per_minute: Speaking rate.

    Returns:
        16-bit mono PCM and its sample rate (22050 Hz).

    Raises:
        EspeakUnavailable: If the library cannot be loaded.
        ValueError: For an unknown voice.
    """
    engine = _Espeak.get()
    return engine.synthesize(text, voice, words_per_minute), engine.sample_rate


@dataclass
class EspeakTTSSettings(TTSSettings):
    """Settings for :class:`EspeakTTSService`.

    Parameters:
        words_per_minute: Speaking rate (eSpeak NG's default is 175).
    """

    words_per_minute: int | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class EspeakTTSService(TTSService):
    """Offline text to speech with eSpeak NG (robotic, but clear and instant).

    The voice is eSpeak NG's voice name (``settings.voice``, default ``en-us``).
    Each utterance is synthesized whole, then resampled in one piece from
    eSpeak's 22050 Hz to the pipeline's output rate: all of it, its closing
    pause included (a stream resampler that is not flushed keeps back its
    last 20-100 ms, and could leak them into the next utterance).
    """

    Settings = EspeakTTSSettings
    _settings: EspeakTTSSettings

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        words_per_minute: int = DEFAULT_WORDS_PER_MINUTE,
        settings: EspeakTTSSettings | None = None,
        **kwargs,
    ):
        """Initialize the service (loads eSpeak NG once per process).

        Args:
            voice: eSpeak NG voice name.
            words_per_minute: Speaking rate.
            settings: Runtime-updatable settings; they win over the arguments.
            **kwargs: Passed to Pipecat's ``TTSService``.

        Raises:
            EspeakUnavailable: If the library cannot be loaded.
        """
        default_settings = EspeakTTSSettings(
            model=None, voice=voice, language=None, words_per_minute=words_per_minute
        )
        if settings is not None:
            default_settings.apply_update(settings)
        super().__init__(
            push_start_frame=True, push_stop_frames=True, settings=default_settings, **kwargs
        )
        _Espeak.get()

    def can_generate_metrics(self) -> bool:
        """This service reports TTFB and usage metrics."""
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Speak ``text`` as one audio frame.

        Args:
            text: The text to speak.
            context_id: The TTS context of this utterance.

        Yields:
            One ``TTSAudioRawFrame`` at the pipeline's output rate, or an
            ``ErrorFrame`` naming the cause.
        """
        voice = str(assert_given(self._settings.voice))
        wpm = int(assert_given(self._settings.words_per_minute))
        try:
            await self.start_tts_usage_metrics(text)
            pcm, rate = await asyncio.to_thread(
                espeak_synthesize, text, voice=voice, words_per_minute=wpm
            )
            await self.stop_ttfb_metrics()
            audio = resample(pcm, rate, self.sample_rate)
            yield TTSAudioRawFrame(
                audio=audio, sample_rate=self.sample_rate, num_channels=1, context_id=context_id
            )
        except (ValueError, RuntimeError) as e:
            yield ErrorFrame(error=f"eSpeak NG could not speak {text[:40]!r}: {e}")
        finally:
            await self.stop_ttfb_metrics()
