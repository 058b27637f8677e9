"""Expectations on a transcript (scenario.matching): normalize, contains, matches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from num2words import num2words

from budget import budget
from pipecat_wsclient.scenario.matching import check_pattern, contains, matches, normalize


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("We open at 9.", "we open at nine"),
        ("9", "nine"),
        ("9:00", "nine"),
        ("9:30", "nine thirty"),
        ("9:05", "nine oh five"),
        ("5pm", "five pm"),
        ("5 p.m.", "five pm"),
        ("9:00 A.M.", "nine am"),
        ("1,500", "one thousand five hundred"),
        ("1,500,000", "one million five hundred thousand"),
        ("1, 2, 3", "one two three"),
        ("12#", "twelve"),
        ("Press 5 then #.", "press five then"),
        ("3.5", "three point five"),
        ("3.05", "three point zero five"),
        ("1st", "first"),
        ("22nd and 3rd, 11th", "twenty second and third eleventh"),
        ("101st", "one hundred first"),
        ("1-2", "one two"),
        ("twenty-one", "twenty one"),
        ("21", "twenty one"),
        ("101 Dalmatians", "one hundred one dalmatians"),
        ("one hundred and one", "one hundred one"),
        ("rock and roll", "rock and roll"),
        ("007", "zero zero seven"),
        (
            "4111 1111 1111 1111",
            "four thousand one hundred eleven one thousand one hundred eleven "
            "one thousand one hundred eleven one thousand one hundred eleven",
        ),
        ("4111111111111111", "four one one one one one one one one one one one one one one one"),
        ("50% & more", "fifty percent and more"),
        ("Don't STOP!", "don't stop"),
        ("\u2018quoted\u2019 it\u2019s", "quoted it's"),
        ("  lots\t of\n space  ", "lots of space"),
        ("?!...", ""),
        ("", ""),
    ],
)
def test_normalize_examples(text: str, normalized: str) -> None:
    assert normalize(text) == normalized


@pytest.mark.parametrize(
    ("transcript", "phrase", "expected"),
    [
        ("We open at 9.", "nine", True),
        ("We open at 9.", "9", True),
        ("We open at ninety.", "nine", False),
        ("We are open from 9 to 5, Monday to Friday.", "nine to five", True),
        ("We are open from nine to five.", "9 to 5", True),
        ("We open at 9:00 a.m.", "nine am", True),
        ("It costs 1,500 dollars.", "one thousand five hundred dollars", True),
        ("It costs 1,500 dollars.", "1500 dollars", True),
        ("It costs 105 dollars.", "5", False),  # a number matches whole numbers only
        ("It costs 5 dollars.", "5", True),
        ("It costs 5,000 dollars.", "five", False),
        ("There are 21 of them.", "twenty", False),
        ("It is 3.5 meters.", "three", False),
        ("It is 3.5 meters.", "five", False),
        ("Press 1 2 3.", "press one", True),  # digit by digit is not one number
        ("Your order is on the 1st floor.", "first floor", True),
        ("Goodbye!", "good bye", False),
        ("Hello there", "hello there", True),
        ("Hello there", "", True),
    ],
)
def test_contains_examples(transcript: str, phrase: str, expected: bool) -> None:
    assert contains(transcript, phrase) is expected


def test_matches_raw_or_normalized() -> None:
    assert matches("Your code is 4711.", r"\bcode is \d{4}\b")
    assert matches("Your code is 4711.", r"four thousand seven hundred eleven")
    assert matches("We open at 9 a.m.", r"nine (am|in the morning)")
    assert not matches("We open at 9 a.m.", r"ten")
    assert matches("Hello!", r"^hello$")  # only the normalized text is lower case and bare
    assert not matches("Hello", r"^Goodbye")


def test_bad_pattern_names_pattern_and_error() -> None:
    with pytest.raises(ValueError, match=r"'\(open'.*missing \)"):
        check_pattern("(open")
    with pytest.raises(ValueError, match=r"'\[a-'"):
        matches("anything", "[a-")
    assert check_pattern(r"\d+").search("a 12") is not None


# Words with no number in them, and punctuation that ends or starts a word.
_WORDS = st.sampled_from(
    "we are open from to monday friday the office is closed call back at "
    "hello thanks please hold your order number".split()
)
_SENTENCE = st.lists(_WORDS, max_size=6).map(" ".join)
_TEXT = st.text(
    alphabet=st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'-#%&()\u2019"
    ),
    max_size=40,
)


@pytest.mark.generated
@given(st.one_of(st.text(max_size=40), _TEXT))
@budget(ci=400, long=20_000)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@pytest.mark.generated
@given(st.one_of(st.text(max_size=40), _TEXT))
@budget(ci=300, long=10_000)
def test_any_text_contains_itself(text: str) -> None:
    assert contains(text, text)


@pytest.mark.generated
@given(
    st.integers(min_value=0, max_value=10**6),
    _SENTENCE,
    _SENTENCE,
    st.sampled_from(["", ".", ",", "!", "?"]),
)
@budget(ci=300, long=10_000)
def test_a_number_in_digits_is_matched_by_its_words_and_digits(
    n: int, before: str, after: str, stop: str
) -> None:
    transcript = f"{before} {n}{stop} {after}".strip()
    assert contains(transcript, num2words(n))
    assert contains(transcript, str(n))
    assert contains(transcript, f"{n:,}")


@pytest.mark.generated
@given(
    st.lists(
        st.tuples(
            st.one_of(_WORDS, st.integers(0, 10**6).map(str)),
            st.sampled_from(["", "", ".", ",", "!", "?", ";", ":", "'", '"', ")", "-"]),
            st.sampled_from(["", "", "(", '"', "'"]),
        ),
        max_size=8,
    ),
    st.lists(st.one_of(_WORDS, st.integers(0, 10**6).map(str)), min_size=1, max_size=3),
    st.data(),
)
@budget(ci=300, long=10_000)
def test_case_and_punctuation_never_change_the_outcome(
    words: list[tuple[str, str, str]], phrase_words: list[str], data: st.DataObject
) -> None:
    plain = " ".join(word for word, _, _ in words)
    punctuated = " ".join(f"{opening}{word}{closing}" for word, closing, opening in words)
    phrase = " ".join(phrase_words)
    if data.draw(st.booleans()):  # a phrase taken from the text, so that some are found
        start = data.draw(st.integers(0, len(words)))
        phrase = " ".join(word for word, _, _ in words[start : start + 3]) or phrase
    expected = contains(plain, phrase)
    assert contains(punctuated, phrase) is expected
    assert contains(plain.upper(), phrase) is expected
    assert contains(punctuated.title(), phrase.upper()) is expected
    assert contains(plain, phrase + "!") is expected
