#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speech for scripted calls: the caller's turns spoken, the bot's turns transcribed.

Both run any Pipecat service the generic way: a fresh service from a factory,
alone in a small pipeline (``Pipeline([service, collector])``) that is fed the
frames a real pipeline would give it and then ended::

    synthesizer = Synthesizer()                     # eSpeak NG, cached WAV files
    pcm = await synthesizer.synthesize("Hi, when are you open?", 16000)

    transcriber = Transcriber()                     # Whisper, base.en by default
    text = await transcriber.transcribe(bot_pcm, 8000)

Another service plugs in as a factory, e.g.
``Synthesizer(lambda: CartesiaTTSService(api_key=...), cache_key="cartesia-sonic")``
or ``Transcriber(lambda: DeepgramSTTService(api_key=...))``.

Audio is 16-bit mono PCM throughout. Every failure (an ``ErrorFrame`` from the
service, no audio, a timeout, a model that cannot be loaded) is a
:class:`SpeechError` naming the text or the model and the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.workers.runner import WorkerRunner

from pipecat_wsclient.scenario.espeak import (
    DEFAULT_VOICE,
    DEFAULT_WORDS_PER_MINUTE,
    EspeakTTSService,
)

DEFAULT_TIMEOUT_SECS = 60.0
DEFAULT_STT_MODEL = "base.en"
STT_MODEL_ENV = "PIPECAT_WSCLIENT_STT_MODEL"
CACHE_ENV = "PIPECAT_WSCLIENT_CACHE"
AUDIO_CHUNK_SECS = 0.020  # the transcriber feeds audio as a transport would, 20 ms at a time
_CANCEL_TIMEOUT_SECS = 5.0  # for a cancelled pipeline to end
_CACHE_FORMAT = "tts-cache-1"  # part of every cache key; bump it to orphan old files


NO_SPEECH_PROB = 0.9
"""Whisper segments whose no-speech probability is at least this are dropped."""


class SpeechError(RuntimeError):
    """Speech could not be synthesized or transcribed; the message says what and why."""


def default_cache_dir() -> Path:
    """The folder of cached speech: ``$PIPECAT_WSCLIENT_CACHE/tts``.

    Returns:
        ``tts`` in ``$PIPECAT_WSCLIENT_CACHE``, or in ``~/.cache/pipecat-wsclient``.
    """
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pipecat-wsclient"
    return Path(root).expanduser() / "tts"


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
        self._cache = _WavCache(cache_dir or default_cache_dir())
        self._voice: str | None = cache_key
        self._voice_known = cache_key is not None
        if tts is None and cache_key is None:
            self._voice = _espeak_voice(DEFAULT_VOICE, DEFAULT_WORDS_PER_MINUTE)
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
            self._voice = _service_voice(service)
            self._voice_known = True
        key = None if self._voice is None else _cache_key(self._voice, text, sample_rate)
        if key is not None and (cached := self._cache.get(key, sample_rate)) is not None:
            return cached

        service = service or self._new_service(text)
        what = f"speech for {_quote(text)}"
        frames = await _run_alone(
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
            if sample_rate != self.sample_rate:
                pcm = _resample(pcm, sample_rate, self.sample_rate)
            chunk = int(self.sample_rate * AUDIO_CHUNK_SECS) * 2
            audio: list[Frame] = [
                InputAudioRawFrame(pcm[i : i + chunk], self.sample_rate, 1)
                for i in range(0, len(pcm), chunk)
            ]
            seconds = len(pcm) / 2 / self.sample_rate
            frames = await _run_alone(
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
        model = self.model or resolve_stt_model()
        service_class = await asyncio.to_thread(_load_whisper, model)
        return functools.partial(
            service_class,
            device=_WHISPER_DEVICE,
            compute_type=_WHISPER_COMPUTE_TYPE,
            # What we transcribe is an answer already heard as speech, so
            # Whisper's no-speech filter (Pipecat's default drops a segment at
            # 0.4) only loses short answers: "You pressed 1 2." over 8 kHz
            # scored 0.38-0.54 and came back empty.
            settings=service_class.Settings(model=model, no_speech_prob=NO_SPEECH_PROB),
            # Pipecat's figure for local Whisper (``WHISPER_TTFS_P99``); given, so
            # that each service does not warn that it is missing.
            ttfs_p99_latency=1.0,
        )


# -- One service in a pipeline of its own -------------------------------------------------


class _Collector(FrameProcessor):
    """Keeps the frames of the given types (and errors) that reach the end of the pipeline."""

    def __init__(self, types: tuple[type[Frame], ...]):
        super().__init__()
        self._types = (*types, ErrorFrame)
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, self._types):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


async def _run_alone(
    service: FrameProcessor,
    frames: Sequence[Frame],
    params: PipelineParams,
    *,
    collect: tuple[type[Frame], ...],
    timeout: float | None,
    what: str,
) -> list[Frame]:
    """Run ``service`` in ``Pipeline([service, collector])`` on ``frames``; what it produced.

    Raises:
        SpeechError: Naming ``what`` and the cause, for an ``ErrorFrame``
            (upstream or downstream) or a run longer than ``timeout``.
    """
    collector = _Collector(collect)
    pipeline = Pipeline([service, collector])
    worker = PipelineWorker(pipeline, params=params, enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    errors: list[str] = []
    failed = asyncio.Event()
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_pipeline_started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame.error)
        failed.set()  # the result is wrong anyway: stop at once

    await worker.queue_frames(frames)
    await runner.add_workers(worker)
    run = asyncio.ensure_future(runner.run())
    failure = asyncio.ensure_future(failed.wait())
    try:
        await asyncio.wait({run, failure}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        timed_out = not run.done() and not failed.is_set()
    finally:
        failure.cancel()
        if not run.done():  # failed, timed out, or we are cancelled
            if started.is_set():
                await pipeline.queue_frame(CancelFrame(reason=f"{what}: stopped"))
            else:
                await runner.cancel(reason=f"{what}: stopped")
            await _finish(run, what)
    if timed_out:
        raise SpeechError(f"{what}: {type(service).__name__} took longer than {timeout} s")
    if not failed.is_set():
        run.result()
    errors += [f.error for f in collector.frames if isinstance(f, ErrorFrame)]
    if errors:
        raise SpeechError(f"{what}: {type(service).__name__} failed: {'; '.join(errors)}")
    return collector.frames


async def _finish(run: asyncio.Future[None], what: str) -> None:
    """Wait for a pipeline run being cancelled to end; cancel its task if it does not.

    The pipeline is cancelled with a ``CancelFrame`` queued into the pipeline
    itself: the worker's own cancel would wait behind the ``EndFrame`` it has
    already queued, which waits for the service, the part that failed or is
    stuck. The ``CancelFrame`` reaching the end also ends that wait.
    """
    await asyncio.wait({run}, timeout=_CANCEL_TIMEOUT_SECS)
    if run.done():
        if not run.cancelled():
            run.exception()  # retrieved: the run was stopped, how it ended does not matter
        return
    logger.warning(f"{what}: the pipeline did not end when cancelled; cancelling its task")
    run.cancel()


def _join_audio(frames: Sequence[TTSAudioRawFrame], sample_rate: int, what: str) -> bytes:
    """The frames' audio, one stretch at ``sample_rate`` (runs at other rates resampled)."""
    runs: list[tuple[int, bytearray]] = []
    for frame in frames:
        if frame.num_channels != 1:
            raise SpeechError(f"{what}: {frame.num_channels}-channel audio (only mono is handled)")
        if not runs or runs[-1][0] != frame.sample_rate:
            runs.append((frame.sample_rate, bytearray()))
        runs[-1][1].extend(frame.audio)
    return b"".join(_resample(bytes(pcm), rate, sample_rate) for rate, pcm in runs)


def _resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """16-bit mono PCM from one sample rate to another (soxr, high quality)."""
    pcm = pcm[: len(pcm) // 2 * 2]
    if from_rate == to_rate or not pcm:
        return pcm
    try:
        import numpy as np
        import soxr
    except ImportError as e:
        raise SpeechError(
            f"resampling needs numpy and soxr: pip install 'pipecat-wsclient[test]' ({e})"
        ) from e
    samples = np.frombuffer(pcm, dtype=np.int16)
    return bytes(soxr.resample(samples, from_rate, to_rate).astype(np.int16).tobytes())


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# -- The speech cache ---------------------------------------------------------------------


def _espeak_voice(voice: str, words_per_minute: int) -> str:
    return f"espeak {voice} {words_per_minute}"


def _service_voice(service: TTSService) -> str | None:
    """What names a service's voice in cache keys; ``None`` if nothing stable does."""
    settings: Any = getattr(service, "_settings", None)
    if type(service) is EspeakTTSService:  # a subclass may speak otherwise
        return _espeak_voice(str(settings.voice), int(settings.words_per_minute))
    described = repr(settings)
    if settings is None or " at 0x" in described:  # an object's repr changes every run
        return None
    cls = type(service)
    return f"{cls.__module__}.{cls.__qualname__} {described}"


def _cache_key(voice: str, text: str, sample_rate: int) -> str:
    fields = (_CACHE_FORMAT, voice, text, str(sample_rate))
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


class _WavCache:
    """WAV files of 16-bit mono PCM named by key; writes are atomic, failures are misses."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._writable = True

    def get(self, key: str, sample_rate: int) -> bytes | None:
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


# -- Whisper, one model per process -------------------------------------------------------

_WHISPER_DEVICE = "cpu"
_WHISPER_COMPUTE_TYPE = "int8"
_whisper_models: dict[tuple[str, str, str], Any] = {}
_whisper_models_lock = threading.Lock()


def _load_whisper(model: str) -> Any:
    """Load ``model`` into the process-wide cache; the shared-model service class. Blocking.

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
    return _shared_model_whisper_service()


def _shared_whisper_model(model: str, device: str, compute_type: str) -> Any:
    """The loaded ``WhisperModel``, loaded (or downloaded) on first use. Blocking."""
    key = (model, device, compute_type)
    with _whisper_models_lock:
        if key not in _whisper_models:
            from faster_whisper import WhisperModel

            try:
                _whisper_models[key] = WhisperModel(model, device=device, compute_type=compute_type)
            except Exception as e:
                raise SpeechError(
                    f"cannot load the Whisper model {model!r}: {type(e).__name__}: {e}. "
                    f"Pass the path of a local model folder (model=...) or set {STT_MODEL_ENV} "
                    "to one, or let faster-whisper download the model (needs network)"
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
