#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The speech cache: WAV files of synthesized speech, named by voice, text and sample rate.

A key is the SHA-256 of the voice (a name that says everything the audio
depends on, see :func:`service_voice`), the text and the rate::

    cache = WavCache(default_cache_dir())
    key = speech_key(espeak_voice("en-us", 150), "Hello", 16000)
    pcm = cache.get(key, 16000)            # None on a miss
    cache.put(key, pcm, 16000)

Writes are atomic (a temporary file renamed), and every failure is a miss: an
unwritable folder turns caching off with one warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import wave
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.services.tts_service import TTSService

from pipecat_wsclient.scenario.espeak import EspeakTTSService

CACHE_ENV = "PIPECAT_WSCLIENT_CACHE"
_CACHE_FORMAT = "tts-cache-1"  # part of every cache key; bump it to orphan old files


def default_cache_dir() -> Path:
    """The folder of cached speech: ``$PIPECAT_WSCLIENT_CACHE/tts``.

    Returns:
        ``tts`` in ``$PIPECAT_WSCLIENT_CACHE``, or in ``~/.cache/pipecat-wsclient``.
    """
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pipecat-wsclient"
    return Path(root).expanduser() / "tts"


def espeak_voice(voice: str, words_per_minute: int) -> str:
    """What names an eSpeak NG voice in cache keys."""
    return f"espeak {voice} {words_per_minute}"


def service_voice(service: TTSService) -> str | None:
    """What names a service's voice in cache keys; ``None`` if nothing stable does.

    Args:
        service: The TTS service.

    Returns:
        eSpeak NG's voice and rate for :class:`EspeakTTSService` itself; else
        the class and the ``repr`` of its settings, unless that ``repr`` has an
        object's address in it (it would change every run).
    """
    settings: Any = getattr(service, "_settings", None)
    if type(service) is EspeakTTSService:  # a subclass may speak otherwise
        return espeak_voice(str(settings.voice), int(settings.words_per_minute))
    described = repr(settings)
    if settings is None or " at 0x" in described:  # an object's repr changes every run
        return None
    cls = type(service)
    return f"{cls.__module__}.{cls.__qualname__} {described}"


def speech_key(voice: str, text: str, sample_rate: int) -> str:
    """The cache key (a file name without ``.wav``) of ``text`` spoken by ``voice``."""
    fields = (_CACHE_FORMAT, voice, text, str(sample_rate))
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


class WavCache:
    """WAV files of 16-bit mono PCM named by key; writes are atomic, failures are misses."""

    def __init__(self, folder: Path):
        """Initialize the cache (creates no folder yet).

        Args:
            folder: Where the files are; made on the first write.
        """
        self.folder = folder
        self._writable = True

    def get(self, key: str, sample_rate: int) -> bytes | None:
        """The audio under ``key``, if its file is readable 16-bit mono at ``sample_rate``."""
        try:
            with wave.open(str(self.folder / f"{key}.wav"), "rb") as wav:
                if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (
                    1,
                    2,
                    sample_rate,
                ):
                    return None
                return wav.readframes(wav.getnframes()) or None
        except (OSError, EOFError, wave.Error):
            return None

    def put(self, key: str, pcm: bytes, sample_rate: int) -> None:
        """Store 16-bit mono PCM under ``key``; the first failure turns the cache off."""
        if not self._writable:
            return
        temporary: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as file, wave.open(file, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(sample_rate)
                wav.writeframes(pcm)
            os.replace(temporary, self.folder / f"{key}.wav")
        except OSError as e:
            self._writable = False
            logger.warning(f"speech cache {self.folder} is not writable, not caching: {e}")
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
