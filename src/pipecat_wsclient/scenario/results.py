#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a scripted call's turns measured: :class:`TurnResult`, transcripts, call failures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipecat_wsclient import ConnectionFailure
from pipecat_wsclient.scenario.matching import contains, matches


class CallFailed(RuntimeError):
    """The call could not be made or was lost; ``exit_code`` is the ``call`` command's."""

    def __init__(self, message: str, exit_code: int, failure: ConnectionFailure | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.failure = failure


@dataclass
class TurnResult:
    """What one turn measured. Times are seconds from the start of the call (``_s``).

    ``None`` where nothing was measured (no answer, no barge-in...).
    """

    label: str
    kind: str
    started_s: float = 0.0
    speech_start_s: float | None = None
    """Our speech's first voiced window, at the far end's playback time."""
    speech_end_s: float | None = None
    """Our speech's end (its last voiced window)."""
    dtmf_sent: str = ""
    """Keys sent in this turn."""
    response_ms: float | None = None
    """From the end of our speech (last DTMF key, start of a listen) to the answer's first audio."""
    answer_start_s: float | None = None
    answer_end_s: float | None = None
    answer_secs: float | None = None
    """How long the answer lasted (to its last voiced window, or until it was cut off)."""
    barge_in_ms: float | None = None
    """barge_in: from our speech onset to the bot's audio stopping."""
    clear_ms: float | None = None
    """barge_in with a carrier: from our speech onset to the bot's ``clear``."""
    transcript: str | None = None
    """What the bot said in its answer (None: not transcribed)."""
    underruns: int = 0
    """Gaps of 20-250 ms inside the answer's audio."""
    marks: int = 0
    """Carrier marks the bot sent during the turn."""
    clears: int = 0
    """Carrier clears the bot sent during the turn."""
    bot_hung_up: bool = False
    """The bot ended the call during (or right after) this turn."""
    notes: list[str] = field(default_factory=list)
    """What went differently from the script (no answer, the call ended...)."""
    failures: list[str] = field(default_factory=list)
    """Expectations that did not hold (filled by the checks)."""
    judged: list[dict[str, Any]] = field(default_factory=list)
    """The judge's verdicts on the turn's ``eval`` criteria: criterion, verdict, reason."""

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for ``--json``)."""
        return {**asdict(self), "passed": self.passed}


class Transcript(str):
    """What the bot said; ``in`` forgives case, punctuation and numerals.

    ``"nine to five" in Transcript("Open 9 to 5.")`` is true, as
    ``transcript_contains`` in a scenario; :meth:`matches` is
    ``transcript_matches``.
    """

    def __contains__(self, phrase: object) -> bool:
        return isinstance(phrase, str) and contains(str(self), phrase)

    def matches(self, pattern: str) -> bool:
        """Whether the regular expression matches the raw or the normalized text."""
        return matches(str(self), pattern)


Answer = TurnResult
"""What ``say``/``play``/``dtmf``/``listen`` return: the turn and the bot's answer."""
