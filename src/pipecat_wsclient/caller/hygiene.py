#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What crosses to the terminal and onto the wire: text made printable, headers checked (pure).

Issue 25, item 6. The far end writes some of what the commands show: a
close reason, a transcript, an error message built from them. Shown as it
came, an escape sequence would clear the screen or recolour it, a line
break would print a line of its own ("FAKE: all checks passed"), a bidi
override would reorder what follows. :func:`printable` makes such text
inert for a terminal, visibly: every control character becomes an escape
you can read. JSON reports keep the raw text (``json.dumps`` escapes it);
JUnit XML takes :func:`xml_text`.

A handshake header is checked when it is given (``--header``, a scenario's
``headers``), before any connection: :func:`check_header` says what is
wrong without showing the value (it may be a token).

Example::

    err.print(f"error: {printable(result.error)}", markup=False)
    check_header("Authorization", "Bearer abc", "--header")
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Bidirectional marks, embeddings, overrides and isolates: they reorder what follows."""

_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")
"""C0 and C1 controls (ESC, CR, LF, TAB, BEL...), DEL, line and paragraph separators, bidi
controls, and lone surrogates (a file name's undecodable bytes: no terminal can print them)."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An RFC 7230 token: what a header name is made of."""

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
"""Characters XML 1.0 cannot hold at all (escaped or not)."""


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    r"""``text`` safe for a terminal: control characters shown as escapes, on one line.

    ESC becomes ``\x1b``, CR and LF ``\r`` and ``\n``, TAB ``\t``, other C0
    and C1 controls and DEL ``\xNN``, line and paragraph separators, bidi
    overrides and lone surrogates ``\uNNNN``. Everything else (letters of
    any script, emoji, backslashes) is kept. Idempotent on its own output.

    Args:
        text: Anything; ``str()`` of it is taken (None gives ``"None"``).

    Returns:
        The text, one line, nothing in it a terminal acts on.
    """
    return _UNPRINTABLE.sub(_escape, str(text))


def xml_text(text: object) -> str:
    r"""``text`` for an XML 1.0 document: characters XML cannot hold shown as escapes.

    XML escapes ``<``, ``&`` and quotes itself (``ElementTree`` does), but a
    NUL, an ESC or a lone surrogate cannot be written at all: the file would
    not parse. They become ``\xNN`` (``\uNNNN``); TAB, LF and CR stay, as XML
    allows them.

    Args:
        text: Anything; ``str()`` of it is taken.

    Returns:
        The text, valid in an XML document.
    """
    return _XML_INVALID.sub(_escape, str(text))


def check_header(name: str, value: str, where: str) -> None:
    """Fail if a handshake header cannot be sent as it is; the message never shows the value.

    The name must be an RFC 7230 token (letters, digits and ``!#$%&'*+-.^_`|~``:
    no space, colon, CR or LF); the value must hold no CR, LF, NUL or other
    control character but TAB (a line break would end the header there and
    start another one: header injection).

    Args:
        name: The header's name.
        value: Its value.
        where: What gave it, for the message (``--header``, ``x.yaml: headers``).

    Raises:
        ValueError: One line naming ``where``, the name (made printable) and the cause.
    """
    if not _TOKEN.fullmatch(name):
        cause = "is empty" if not name else "is not a token (letters, digits, !#$%&'*+-.^_`|~)"
        raise ValueError(f"{where}: header name '{printable(name)}' {cause}")
    bad = next((c for c in value if (c < " " and c != "\t") or c == "\x7f"), None)
    if bad is not None:
        what = {"\r": "a CR", "\n": "a line break (LF)", "\x00": "a NUL"}.get(
            bad, f"the control character {printable(bad)}"
        )
        raise ValueError(f"{where}: the value of header '{name}' holds {what} (not shown)")


def rounded(value: object, digits: int = 3) -> object:
    """``value`` with every float rounded to ``digits`` decimals (for ``--json``).

    Measured times are milliseconds or seconds to the millisecond: a float's
    binary tail (``2099.999999999909``) is noise, not precision.
    """
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value
