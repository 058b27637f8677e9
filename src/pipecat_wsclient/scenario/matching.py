#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

r"""How a scenario's expectations match what the bot said (pure: no I/O).

A transcript and a phrase are compared after :func:`normalize`: lower case,
no punctuation, numbers written as words, so that ``"9 to 5"`` (what a speech
recognizer often writes) and ``"nine to five"`` (what a scenario author
writes) agree::

    contains("We are open from 9 to 5.", "nine to five")  # True
    contains("We open at 9.", "ninety")                   # False
    matches("Your code is 4711.", r"\bcode is \d+")       # True (raw transcript)
    matches("Your code is 4711.", r"four thousand")       # True (normalized)

A pattern is a Python regular expression; :func:`check_pattern` tells a bad one
at load time.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

# Words of English numbers, as num2words writes them once hyphens are spaces.
_UNITS = frozenset("one two three four five six seven eight nine".split())
_TEENS = frozenset(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
)
_TENS = frozenset("twenty thirty forty fifty sixty seventy eighty ninety".split())
_SCALES = frozenset("hundred thousand million billion".split())
_CARDINALS = _UNITS | _TEENS | _TENS | _SCALES | {"zero"}
_UNIT_ORDINALS = frozenset("first second third fourth fifth sixth seventh eighth ninth".split())
_SCALE_ORDINALS = frozenset("hundredth thousandth millionth billionth".split())
_ORDINALS = (
    _UNIT_ORDINALS
    | _SCALE_ORDINALS
    | frozenset(
        "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth"
        " nineteenth twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth"
        " ninetieth".split()
    )
)
_MAX_NUMBER_DIGITS = 12  # a longer run of digits is read digit by digit (card numbers)
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_AM_PM = re.compile(r"(?<![a-z])([ap])\.m\b\.?")
_THOUSANDS = re.compile(r"(?<![0-9,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])")
_TIME = re.compile(r"(?<![0-9:])([0-9]{1,2}):([0-9]{2})(?![0-9])")
_DECIMAL = re.compile(r"(?<![0-9.])([0-9]+)\.([0-9]+)(?![0-9])")
_ORDINAL = re.compile(r"([0-9]+)(?:st|nd|rd|th)\b")
_INTEGER = re.compile(r"[0-9]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_SYMBOL_WORDS = {"%": " percent ", "&": " and "}
# "one hundred and five" -> "one hundred five": num2words writes the "and",
# people often don't; without it both sides agree.
_AND_IN_NUMBER = re.compile(
    r"\b("
    + "|".join(sorted(_SCALES))
    + r") and (?=(?:"
    + "|".join(sorted((_CARDINALS - _SCALES) | _ORDINALS))
    + r")\b)"
)


def normalize(text: str) -> str:
    """Put a text in the form transcripts and phrases are compared in.

    Lower case (Unicode case folding, NFKC); numbers written with digits become
    English words (``"9"`` -> ``"nine"``, ``"1,500"`` -> ``"one thousand five
    hundred"``, ``"3.5"`` -> ``"three point five"``, ``"9:00"`` -> ``"nine"``,
    ``"9:05"`` -> ``"nine oh five"``, ``"5pm"`` and ``"5 p.m."`` -> ``"five
    pm"``, ``"1st"`` -> ``"first"``; ``"007"`` and runs of more than 12 digits
    are read digit by digit: ``"zero zero seven"``);
    ``%`` and ``&`` become ``percent`` and ``and``; every other punctuation mark
    or symbol, hyphens included, becomes a space, except an apostrophe inside a
    word (``"don't"`` stays); the ``and`` inside a number (``"one hundred and
    five"``) is dropped; whitespace is collapsed. Idempotent.

    Args:
        text: Any text.

    Returns:
        Words separated by single spaces (``""`` if there are none).
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _AM_PM.sub(r"\1m", text)
    text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    text = _TIME.sub(_time_words, text)
    text = _DECIMAL.sub(lambda m: f" {_integer_words(m[1])} point {_digit_words(m[2])} ", text)
    text = _ORDINAL.sub(lambda m: f" {_integer_words(m[1], ordinal=True)} ", text)
    text = _INTEGER.sub(lambda m: f" {_integer_words(m.group())} ", text)
    words = " ".join(_strip_punctuation(text).split())
    return _AND_IN_NUMBER.sub(r"\1 ", words)


def contains(transcript: str, phrase: str) -> bool:
    """Whether ``phrase`` is said in ``transcript``, both normalized.

    The phrase must occur as whole words (``"nine"`` is not in ``"ninety"``)
    and a number as a whole number: ``"five"`` is not in ``"105"`` (``"one
    hundred five"``), ``"twenty"`` not in ``"21"``, ``"three"`` not in
    ``"3.5"``. A phrase with no words (``""``, ``"?!"``) is in every transcript.

    Args:
        transcript: What the bot said.
        phrase: What it should have said, with digits or words for numbers.

    Returns:
        True if the phrase occurs.
    """
    said = normalize(transcript).split()
    wanted = normalize(phrase).split()
    if not wanted:
        return True
    size = len(wanted)
    for start in range(len(said) - size + 1):
        if said[start : start + size] != wanted:
            continue
        before = said[start - 1] if start > 0 else None
        after = said[start + size] if start + size < len(said) else None
        if not _continues_number(before, wanted[0]) and not _continues_number(wanted[-1], after):
            return True
    return False


def check_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a regular expression of an expectation, or say what is wrong with it.

    Args:
        pattern: A Python regular expression.

    Returns:
        The compiled pattern.

    Raises:
        ValueError: Naming the pattern and the error, if it does not compile.
    """
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad regular expression {pattern!r}: {e}") from e


def matches(transcript: str, pattern: str) -> bool:
    r"""Whether a regular expression finds a match in the transcript, raw or normalized.

    ``re.search`` runs on the transcript as it is (``r"\d{4}"`` finds
    ``"4711"``) and, if that fails, on :func:`normalize` of it (``r"nine (am|in
    the morning)"`` finds ``"9 a.m."``). It is case-sensitive on the raw text;
    the normalized text is all lower case.

    Args:
        transcript: What the bot said.
        pattern: A Python regular expression.

    Returns:
        True if either search finds a match.

    Raises:
        ValueError: If the pattern does not compile (see :func:`check_pattern`).
    """
    compiled = check_pattern(pattern)
    return bool(compiled.search(transcript) or compiled.search(normalize(transcript)))


def _continues_number(left: str | None, right: str | None) -> bool:
    """Whether two adjacent words belong to the same number ("hundred five", "twenty one")."""
    if left is None or right is None:
        return False
    if left in _SCALES and (right in _CARDINALS or right in _ORDINALS):
        return True  # "hundred five", "thousand first"
    if left in _TENS and (right in _UNITS or right in _UNIT_ORDINALS):
        return True  # "twenty one", "twenty first"
    if left in _CARDINALS and (right in _SCALES or right in _SCALE_ORDINALS or right == "point"):
        return True  # "five hundred", "one hundredth", "three point"
    return left == "point" and right in _DIGITS  # "point five"


def _time_words(match: re.Match[str]) -> str:
    hour, minutes = int(match[1]), int(match[2])
    if minutes == 0:
        return f" {_number_words(hour)} "
    if minutes < 10:
        return f" {_number_words(hour)} oh {_number_words(minutes)} "
    return f" {_number_words(hour)} {_number_words(minutes)} "


def _integer_words(digits: str, *, ordinal: bool = False) -> str:
    """Words for a run of digits: a number, or digit by digit (leading zero, very long)."""
    if len(digits) > _MAX_NUMBER_DIGITS or (len(digits) > 1 and digits.startswith("0")):
        return _digit_words(digits)
    return _number_words(int(digits), ordinal=ordinal)


def _digit_words(digits: str) -> str:
    return " ".join(_DIGITS[int(d)] for d in digits)


def _number_words(number: int, *, ordinal: bool = False) -> str:
    words = str(num2words(number, lang="en", to="ordinal" if ordinal else "cardinal"))
    return words.replace("-", " ").replace(",", " ")


def _strip_punctuation(text: str) -> str:
    """Punctuation and symbols to spaces; apostrophes kept inside words only."""
    text = text.translate(_APOSTROPHES)
    out: list[str] = []
    last = len(text) - 1
    for i, char in enumerate(text):
        if char == "'":
            inside = 0 < i < last and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append(char if inside else " ")
        elif char in _SYMBOL_WORDS:
            out.append(_SYMBOL_WORDS[char])
        elif unicodedata.category(char)[0] in "PS":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)
