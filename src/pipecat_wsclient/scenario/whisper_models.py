#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Whisper on the CPU, one loaded model per process, behind Pipecat's ``WhisperSTTService``.

Pipecat's service loads its model in ``__init__``; the transcriber makes a
fresh service per transcription, so the model is kept here, loaded (or
downloaded) once per name, and the services made by :func:`whisper_factory`
share it::

    factory = await asyncio.to_thread(whisper_factory, resolve_stt_model())
    service = factory()                         # no loading: the model is shared
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from pipecat.services.stt_service import STTService

from pipecat_wsclient.scenario.service_run import SpeechError

DEFAULT_STT_MODEL = "base.en"
STT_MODEL_ENV = "PIPECAT_WSCLIENT_STT_MODEL"

NO_SPEECH_PROB = 0.9
"""Whisper segments whose no-speech probability is at least this are dropped."""

WHISPER_TTFS_P99_SECS = 1.0
"""Pipecat's figure for local Whisper (``WHISPER_TTFS_P99``); given, so that each
service does not warn that it is missing."""

_WHISPER_DEVICE = "cpu"
_WHISPER_COMPUTE_TYPE = "int8"
_whisper_models: dict[tuple[str, str, str], Any] = {}
_whisper_models_lock = threading.Lock()


def resolve_stt_model(model: str | os.PathLike[str] | None = None) -> str:
    """The Whisper model to load: the argument, ``$PIPECAT_WSCLIENT_STT_MODEL``, or ``base.en``.

    Args:
        model: A faster-whisper model name (downloaded from Hugging Face on
            first use) or the path of a local CTranslate2 model folder.

    Returns:
        The model name or path (``~`` expanded).
    """
    name = os.fspath(model) if model else os.environ.get(STT_MODEL_ENV) or DEFAULT_STT_MODEL
    return os.path.expanduser(name) if name.startswith("~") else name


def whisper_factory(model: str) -> Callable[[], STTService]:
    """Load ``model`` (once per process) and make services that share it. Blocking.

    Args:
        model: A resolved model name or folder (see :func:`resolve_stt_model`).

    Returns:
        Makes a fresh ``WhisperSTTService`` on the CPU (int8) with the loaded
        model and Whisper's no-speech filter at :data:`NO_SPEECH_PROB`.

    Raises:
        SpeechError: If faster-whisper is missing or the model cannot be loaded.
    """
    try:
        import faster_whisper  # noqa: F401
    except ImportError as e:
        raise SpeechError(
            "transcripts need the test extra: pip install 'pipecat-wsclient[test]'"
        ) from e
    _shared_whisper_model(model, _WHISPER_DEVICE, _WHISPER_COMPUTE_TYPE)
    service_class = _shared_model_whisper_service()
    return functools.partial(
        service_class,
        device=_WHISPER_DEVICE,
        compute_type=_WHISPER_COMPUTE_TYPE,
        # What we transcribe is an answer already heard as speech, so
        # Whisper's no-speech filter (Pipecat's default drops a segment at
        # 0.4) only loses short answers: "You pressed 1 2." over 8 kHz
        # scored 0.38-0.54 and came back empty.
        settings=service_class.Settings(model=model, no_speech_prob=NO_SPEECH_PROB),
        ttfs_p99_latency=WHISPER_TTFS_P99_SECS,
    )


def load_whisper(model: str) -> None:
    """Load (or download) ``model`` now, as transcriptions will. Blocking.

    Raises:
        SpeechError: If it cannot be loaded, in one line naming ``--stt-model``
            and ``$PIPECAT_WSCLIENT_STT_MODEL``.
    """
    _shared_whisper_model(model, _WHISPER_DEVICE, _WHISPER_COMPUTE_TYPE)


def _shared_whisper_model(model: str, device: str, compute_type: str) -> Any:
    """The loaded ``WhisperModel``, loaded (or downloaded) on first use. Blocking."""
    key = (model, device, compute_type)
    with _whisper_models_lock:
        if key not in _whisper_models:
            from faster_whisper import WhisperModel

            try:
                _whisper_models[key] = WhisperModel(model, device=device, compute_type=compute_type)
            except Exception as e:
                cause = " ".join(f"{type(e).__name__}: {e}".split())
                if len(cause) > 160:
                    cause = cause[:157] + "..."
                raise SpeechError(
                    f"cannot load the speech-to-text model {model!r} ({cause}); give a local "
                    f"model folder with --stt-model (or model=..., ${STT_MODEL_ENV}), "
                    "or let faster-whisper download it (needs network)"
                ) from e
        return _whisper_models[key]


@functools.cache
def _shared_model_whisper_service() -> Any:
    """``WhisperSTTService`` that takes its model from the process-wide cache.

    Pipecat's service loads the model in ``__init__``; a fresh service per
    transcription would load it every time.
    """
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.utils.types import require_given

    class _SharedModelWhisperSTTService(WhisperSTTService):
        def _load(self) -> None:
            settings: Any = self._settings
            model = str(require_given(settings.model, "Whisper model"))
            self._model = _shared_whisper_model(model, self._device, self._compute_type)
            unsupported = self._unsupported_language()
            if unsupported:
                raise ValueError(unsupported)

    return _SharedModelWhisperSTTService
