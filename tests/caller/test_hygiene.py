"""The output-hygiene helpers (issue 25, item 6), on any text: ``printable``, ``xml_text``,
``check_header``.

Promises, generated (``tests/budget.py``: 300 examples in CI):

- ``printable`` leaves no C0/C1 control character, DEL, line or paragraph
  separator or bidi override in its output, keeps every other character as
  it was, is idempotent, and gives one line;
- ``xml_text`` always gives text an XML 1.0 document holds (ElementTree
  writes it and reads it back unchanged);
- ``check_header`` accepts exactly the RFC 7230 tokens as names and values
  without CR, LF or other controls (but TAB), and its message never holds
  the value.
"""

from __future__ import annotations

import string
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.caller.hygiene import check_header, printable, xml_text

UNSAFE = (
    {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]}
    | set("\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
    | set("\u2066\u2067\u2068\u2069")
)
XML_INVALID = {chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"} | {
    chr(c) for c in [*range(0xD800, 0xE000), 0xFFFE, 0xFFFF]
}
any_text = st.text(st.characters(categories=None, codec=None)) | st.text(
    st.sampled_from(sorted(UNSAFE | XML_INVALID) + list("ab \\é日"))
)
"""Any text, lone surrogates and every unsafe character included."""
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, naïve café 日本 🙂", "plain text, naïve café 日本 🙂"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("bell\x07 del\x7f c1\x9b", "bell\\x07 del\\x7f c1\\x9b"),
        ("abc\u202efed", "abc\\u202efed"),
        ("line\u2028sep", "line\\u2028sep"),
        ("C:\\path\\x1b", "C:\\path\\x1b"),  # backslashes stay
        ("name\udc80.wav", "name\\udc80.wav"),  # an undecodable file name
        (None, "None"),
    ],
)
def test_printable_examples(text, shown) -> None:
    assert printable(text) == shown


@pytest.mark.generated
@given(text=any_text)
@budget(ci=300, long=20_000)
def test_printable_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    shown = printable(text)
    assert not UNSAFE & set(shown)
    assert printable(shown) == shown
    assert len(shown.splitlines()) <= 1
    rest = iter(shown)  # every other character is kept, in order
    assert all(c in rest for c in text if c not in UNSAFE)
    if not UNSAFE & set(text):
        assert shown == text


@pytest.mark.generated
@given(text=any_text)
@budget(ci=300, long=20_000)
def test_xml_text_always_makes_a_readable_document(text: str) -> None:
    held = xml_text(text)
    assert not XML_INVALID & set(held)
    element = ET.Element("failure", message=held)
    element.text = held
    document = ET.tostring(element, encoding="utf-8")  # lone surrogates would not encode
    back = ET.fromstring(document)
    assert back.get("message") == held
    assert (back.text or "") == held.replace("\r\n", "\n").replace("\r", "\n")  # XML's line ends
    if not XML_INVALID & set(text):
        assert held == text


@pytest.mark.parametrize(
    "name", ["X-Api-Key", "Authorization", "x_custom.header", "!#$%&'*+-.^_`|~09azAZ"]
)
def test_token_names_and_plain_values_pass(name: str) -> None:
    check_header(name, "Bearer abc.def\tx ; q=1", "--header")
    check_header(name, "", "--header")


@pytest.mark.generated
@given(
    name=st.text(max_size=20),
    value=st.text(max_size=40),
)
@budget(ci=300, long=20_000)
def test_check_header_takes_tokens_and_never_shows_the_value(name: str, value: str) -> None:
    token = bool(name) and all(c in TOKEN_CHARS for c in name)
    clean = all((c >= " " or c == "\t") and c != "\x7f" for c in value)
    secret = "S3CR3T" + value
    try:
        check_header(name, secret, "--header")
    except ValueError as e:
        assert not (token and clean)
        message = str(e)
        assert "S3CR3T" not in message
        assert len(message.splitlines()) == 1
        assert not UNSAFE & set(message)
    else:
        assert token and clean


def test_json_numbers_are_rounded_to_what_was_measured() -> None:
    from pipecat_wsclient.caller.hygiene import rounded

    report = {"ms": 2099.999999999909, "n": 3, "list": [0.1 + 0.2, None, "x"], "d": {"s": 1e-9}}
    assert rounded(report) == {"ms": 2100.0, "n": 3, "list": [0.3, None, "x"], "d": {"s": 0.0}}
