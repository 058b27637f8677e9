#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speech for scripted calls, in one import: the caller's turns spoken, the bot's transcribed.

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

The parts live in modules of their own; this one only gathers their public names:

- :mod:`~pipecat_wsclient.scenario.tts`: :class:`Synthesizer`
- :mod:`~pipecat_wsclient.scenario.tts_cache`: the WAV cache of what it said
- :mod:`~pipecat_wsclient.scenario.stt`: :class:`Transcriber`
- :mod:`~pipecat_wsclient.scenario.whisper_models`: Whisper, one model per process
- :mod:`~pipecat_wsclient.scenario.service_run`: one service run alone; :class:`SpeechError`
- :mod:`~pipecat_wsclient.scenario.espeak`: eSpeak NG as a Pipecat TTS service
"""

from __future__ import annotations

from pipecat_wsclient.scenario.service_run import DEFAULT_TIMEOUT_SECS, SpeechError
from pipecat_wsclient.scenario.stt import AUDIO_CHUNK_SECS, Transcriber
from pipecat_wsclient.scenario.tts import Synthesizer
from pipecat_wsclient.scenario.tts_cache import CACHE_ENV, default_cache_dir
from pipecat_wsclient.scenario.whisper_models import (
    DEFAULT_STT_MODEL,
    NO_SPEECH_PROB,
    STT_MODEL_ENV,
    resolve_stt_model,
)

__all__ = [
    "AUDIO_CHUNK_SECS",
    "CACHE_ENV",
    "DEFAULT_STT_MODEL",
    "DEFAULT_TIMEOUT_SECS",
    "NO_SPEECH_PROB",
    "STT_MODEL_ENV",
    "SpeechError",
    "Synthesizer",
    "Transcriber",
    "default_cache_dir",
    "resolve_stt_model",
]
