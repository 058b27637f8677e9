#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The pytest plugin: test a voice bot with ordinary async tests and the ``voice_call`` fixture.

Installed with the package (entry point ``pytest11``); the fixture needs the
``test`` extra (``pip install 'pipecat-wsclient[test]'``) and an async test
runner (``pytest-asyncio`` or ``anyio``). Nothing heavy is imported until a
test uses the fixture.

Example::

    async def test_opening_hours(voice_call):
        async with voice_call("ws://127.0.0.1:8765/ws", protocol="twilio") as call:
            answer = await call.say("What are your opening hours?")
            assert answer.response_ms < 1500 and "nine" in answer.transcript
            interrupted = await call.barge_in(after_ms=600, say="Sorry, one more thing")
            assert interrupted.barge_in_ms < 800

``say`` waits for the whole answer, so ``barge_in`` after it asks the same
question again and talks over that answer; to talk over the first answer,
``say(..., until="start")`` returns as soon as the answer begins.

``answer.transcript`` is what the bot said (Whisper through Pipecat's
``WhisperSTTService``); ``in`` on it forgives case, punctuation and numerals
("nine" is in "open 9 to 5"). Options: ``--voice-stt-model`` (a Whisper
model name or folder; default ``$PIPECAT_WSCLIENT_STT_MODEL``, else
``base.en``) and ``--voice-record DIR`` (a stereo WAV of every call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pipecat_wsclient.scenario.call import VoiceCall
    from pipecat_wsclient.scenario.speech import Synthesizer, Transcriber


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's command-line options."""
    group = parser.getgroup("voice_call", "scripted voice-bot calls (pipecat-wsclient)")
    group.addoption(
        "--voice-stt-model",
        default=None,
        help="Whisper model (name or local folder) for transcripts of the bot's answers.",
    )
    group.addoption(
        "--voice-record",
        default=None,
        metavar="DIR",
        help="Write a stereo WAV (left: the test, right: the bot) of every voice_call.",
    )


@pytest.fixture(scope="session")
def voice_transcriber(pytestconfig: pytest.Config) -> Transcriber:
    """One transcriber for the session (the model loads once)."""
    from pipecat_wsclient.scenario.speech import Transcriber

    return Transcriber(model=pytestconfig.getoption("--voice-stt-model"))


@pytest.fixture(scope="session")
def voice_synthesizer() -> Synthesizer:
    """One synthesizer for the session (eSpeak NG, cached on disk)."""
    from pipecat_wsclient.scenario.speech import Synthesizer

    return Synthesizer()


@pytest.fixture
def voice_call(
    request: pytest.FixtureRequest,
    voice_transcriber: Transcriber,
    voice_synthesizer: Synthesizer,
) -> Iterator[Callable[..., VoiceCall]]:
    """A factory of calls to a voice bot (each used with ``async with``).

    The factory takes :class:`~pipecat_wsclient.scenario.call.VoiceCall`'s
    arguments. Answers are transcribed as each turn ends. A call still open
    when the test ends is reported as a test error (close it with ``async with``).
    """
    from pipecat_wsclient.scenario.call import VoiceCall

    calls: list[VoiceCall] = []
    record = request.config.getoption("--voice-record")

    def make(uri: str, **kwargs: Any) -> VoiceCall:
        kwargs.setdefault("transcriber", voice_transcriber)
        kwargs.setdefault("synthesizer", voice_synthesizer)
        kwargs.setdefault("transcribe_answers", True)
        call = VoiceCall(uri, **kwargs)
        calls.append(call)
        return call

    yield make
    if record:
        folder = Path(record)
        folder.mkdir(parents=True, exist_ok=True)
        for i, call in enumerate(calls, start=1):
            call.write_recording(folder / f"{request.node.name}-{i}.wav")
    from pipecat_wsclient.errors import redact_uri

    still_open = [redact_uri(c.uri) for c in calls if c.started and not c.ended]
    if still_open:
        pytest.fail(f"voice_call left open (use 'async with'): {', '.join(still_open)}")
