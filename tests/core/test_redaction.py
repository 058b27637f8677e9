"""The one URI redaction (errors.redact_uri): credentials in the path too, ordinary paths intact.

Issue 23, item 7: a token in the URL path (``wss://h/ws/sk_live_...``) was
printed as it was in ``call --json``. The rule (:func:`looks_like_secret`)
is checked on its own table of examples; then, on generated URIs, the
promises of :func:`redact_uri`:

- it never raises and always returns text, whatever it is given;
- it is idempotent: redacting a redacted URI changes nothing;
- every generated secret (path segment, segment after a credential name,
  matrix value, query value or name, password, fragment) is ``***`` in the
  output, and none of the self-evident ones (a known prefix, an opaque run)
  appears anywhere in it, raw or percent-encoded;
- a URI made of ordinary segments (words, numbers, dates, short ids, UUIDs)
  comes back unchanged.

The same holds for :func:`redact_text`, which redacts every URI in free
text (an exception's message, a log line).

Budget (``tests/budget.py``): ``ci`` 300 examples for each of the seven
generated tests (a few seconds here); ``long`` 20,000 (about 4 minutes).
"""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.errors import (
    CREDENTIAL_NAMES,
    REDACTED,
    SECRET_PREFIXES,
    looks_like_secret,
    redact_path,
    redact_text,
    redact_uri,
)

ORDINARY_PATHS = [
    "/ws",
    "/media-stream",
    "/v1/calls",
    "/twilio/ws",
    "/agent/websocket",
    "/api/v2/stream",
    "/",
    "",
    "/2010-04-01/Accounts",
    "/bots/customer-support-bot-v2",
    "/v1/calls/123e4567-e89b-12d3-a456-426614174000/stream",
    "/calls/12345678901234567890123",
    "/ws/call-7",
    "/sk-SK/ws",
    "/realtime/gpt4o-mini-2024-07-18",
]


@pytest.mark.parametrize("path", ORDINARY_PATHS)
def test_ordinary_paths_stay(path):
    assert redact_uri(f"wss://bot.example.com{path}") == f"wss://bot.example.com{path}"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("wss://bot.example.com/ws/sk_live_51HxYzAbCdEf", "wss://bot.example.com/ws/***"),
        (
            "wss://h/media/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sflKxwRJSMeKKF2QT4fwpM",
            "wss://h/media/***",
        ),
        ("wss://h/v1/calls/3f2a9b0c4d5e6f708192a3b4c5d6e7f8", "wss://h/v1/calls/***"),
        ("wss://h/stream/AKIAIOSFODNN7EXAMPLE", "wss://h/stream/***"),
        ("wss://h/token/abc123", "wss://h/token/***"),
        ("wss://h/api-key/abc/ws", "wss://h/api-key/***/ws"),
        ("wss://h/auth/token/abc", "wss://h/auth/***/***"),
        ("wss://h/ws/key=abc", "wss://h/ws/***"),
        ("wss://h/ws/Bearer%20abcd", "wss://h/ws/***"),
        ("wss://h/ws;jsessionid=A1B2;lang", "wss://h/ws;jsessionid=***;lang"),
        ("wss://h/ws;sk_live_abcd", "wss://h/ws;***"),
        ("wss://h/ws?token=abc&room=r1", "wss://h/ws?token=***&room=***"),
        ("wss://h/ws?sk_live_abcdef", "wss://h/ws?***"),
        ("wss://user:pw@h/x", "wss://user:***@h/x"),
        ("wss://tok@h/x", "wss://***@h/x"),
        ("wss://sk_live_abcd:@h/x", "wss://***@h/x"),
        ("wss://h/x#frag", "wss://h/x#***"),
        (
            "wss://h/2010-04-01/Accounts/AC1234567890abcdef1234567890abcdef/Calls",
            "wss://h/2010-04-01/Accounts/***/Calls",
        ),
        ("/ws/sk_live_abcd?token=x", "/ws/***?token=***"),  # a request target
        ("http://[::1", "http://[::1"),  # not a valid URI: shown as it is
        ("ws:////", "ws:////"),  # urllib.parse would give ws://
        ("wss://h/ws?a=1&&b", "wss://h/ws?a=***&***"),
    ],
)
def test_credentials_are_masked(uri, expected):
    assert redact_uri(uri) == expected
    assert redact_uri(expected) == expected


@pytest.mark.parametrize(
    ("segment", "after", "masked"),
    [
        ("ws", "", False),
        ("media-stream", "", False),
        ("v1", "", False),
        ("2010-04-01", "", False),
        ("customer-support-bot-v2", "", False),
        ("123e4567-e89b-12d3-a456-426614174000", "calls", False),
        ("abc123", "token", True),
        ("abc123", "Access_Token", True),
        ("abc123", "tokenizer", False),
        ("api_key=abc", "", True),
        ("sk_live_51HxYz", "", True),
        ("eyJhbGciOiJIUzI1NiJ9.e30.x", "", True),
        ("AKIAIOSFODNN7EXAMPLE", "", True),
        ("Bearer%20abcd", "", True),
        ("sk-SK", "", False),
        ("3f2a9b0c4d5e6f708192a3b4c5d6e7f8", "", True),
        ("123e4567e89b12d3a456426614174000", "", True),  # a dashless UUID: a hex token
        ("MZ18ad3ab5a668481ce02b83e7", "", True),
        ("12345678901234567890123", "", False),
        ("aBcDeFgHiJkLmNoPqRsTuVwX", "", False),  # letters only: not caught
        ("a1b2c3d4e5f6g7h8", "", False),  # under 20 characters: not caught
        ("", "", False),
        (REDACTED, "", False),
    ],
)
def test_the_rule(segment, after, masked):
    assert looks_like_secret(segment, after) is masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "InvalidURI('wss://h/ws/sk_live_51HxYz', \"isn't a valid URI\")",
            "InvalidURI('wss://h/ws/***', \"isn't a valid URI\")",
        ),
        (
            "http://user:pw@proxy:3128 isn't a valid proxy",
            "http://user:***@proxy:3128 isn't a valid proxy",
        ),
        ("redirect to <WSS://h/token/abc?k=v>", "redirect to <WSS://h/token/***?k=***>"),
        ("no URI, only /token/abc and sk_live_abcd", "no URI, only /token/abc and sk_live_abcd"),
    ],
)
def test_uris_in_free_text(text, expected):
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


def test_matrix_parameters_keep_their_names():
    assert redact_path("/ws;a=1;b=;c") == "/ws;a=***;b=***;c"


def test_never_raises_on_invalid_uris():
    for text in ("http://[", "ws://h]:1/", "ws://[::1]x/", "\ud800://h/\udfff?a=\ud800"):
        assert isinstance(redact_uri(text), str)


# Generated URIs. Every segment is built so that the rule knows its fate:
# ordinary ones (kept) and secrets (masked). Each is percent-encoded into the
# URI, so the path splits back into the same segments.

BASE62 = string.ascii_letters + string.digits
B64URL = BASE62 + "-_"
WORDS = [
    "ws",
    "media",
    "stream",
    "media-stream",
    "twilio",
    "agent",
    "websocket",
    "api",
    "calls",
    "v1",
    "v2",
    "gpt4o",
    "Accounts",
    "realtime",
    "customer",
    "support",
    "bot",
    "eu-west-1",
    "telephony",
    "inbound",
]
HOSTS = ["bot.example.com", "127.0.0.1:8765", "[::1]:443", "voice-agent.internal"]


def _mixed(text: str) -> bool:
    return any(c.isalpha() for c in text) and any(c.isdigit() for c in text)


def _plain(text: str) -> bool:
    """Neither a credential name (which masks the next segment) nor prefixed like a secret."""
    name = text.lower().replace("-", "").replace("_", "").replace(".", "")
    return name not in CREDENTIAL_NAMES and not text.startswith(SECRET_PREFIXES)


ordinary_segments = st.one_of(
    st.lists(st.sampled_from(WORDS) | st.integers(0, 99_999).map(str), min_size=1, max_size=6).map(
        "-".join
    ),
    st.integers(0, 10**30).map(str),
    st.uuids().map(str),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12).filter(_plain),
)
prefixed_secrets = st.builds(
    lambda prefix, tail: prefix + tail,
    st.sampled_from(SECRET_PREFIXES),
    st.text(B64URL + ".", min_size=4, max_size=48),
)
opaque_secrets = st.builds(
    lambda head, run, tail: head + run + tail,
    st.text(B64URL, max_size=20),
    st.text(BASE62, min_size=7, max_size=64).filter(_mixed),
    st.text(B64URL, max_size=20),
).filter(lambda s: len(s) >= 20 and not looks_like_uuid(s))
hex_secrets = st.text("0123456789abcdef", min_size=20, max_size=64).filter(_mixed)
evident_secrets = prefixed_secrets | opaque_secrets | hex_secrets
"""Secrets that give themselves away wherever they are."""
any_values = st.text(min_size=1, max_size=30)
"""A value after a credential name, a matrix or query value: anything at all."""
credential_names = st.sampled_from(sorted(CREDENTIAL_NAMES)).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.capitalize()])
)


def looks_like_uuid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


@st.composite
def uris_with_secrets(draw):
    """A URI and its expected path segments (``None`` where a secret must be masked)."""
    segments: list[str] = []
    expected: list[str | None] = []
    evident: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["ordinary", "evident", "named", "matrix"]))
        if kind == "ordinary":
            segment = draw(ordinary_segments)
            segments.append(segment)
            expected.append(segment)
        elif kind == "evident":
            secret = draw(evident_secrets)
            evident.append(secret)
            segments.append(quote(secret, safe=""))
            expected.append(None)
        elif kind == "named":
            name, value = draw(credential_names), draw(any_values.filter(_plain))
            segments += [name, quote(value, safe="")]
            expected += [name, None]
        else:
            segment, name = draw(ordinary_segments), draw(st.sampled_from(WORDS))
            segment += f";{name}={quote(draw(any_values), safe='')}"
            segments.append(segment)
            expected.append(f"{segment.partition(';')[0]};{name}={REDACTED}")
    query_secret = draw(evident_secrets)
    evident.append(query_secret)
    query = f"?{quote(query_secret, safe='')}&room={quote(draw(any_values), safe='')}"
    password = quote(draw(any_values), safe="")
    fragment = quote(draw(any_values), safe="")
    uri = f"wss://user:{password}@{draw(st.sampled_from(HOSTS))}/{'/'.join(segments)}"
    return f"{uri}{query}#{fragment}", expected, evident


@pytest.mark.generated
@given(text=st.text())
@budget(ci=300, long=20_000)
def test_any_text_gives_text_and_is_idempotent(text):
    once = redact_uri(text)
    assert isinstance(once, str)
    assert redact_uri(once) == once


@pytest.mark.generated
@given(
    scheme=st.sampled_from(["ws", "wss", "http", "", "WSS"]),
    netloc=st.text(max_size=20),
    path=st.lists(st.text(max_size=12), max_size=5).map("/".join),
    query=st.text(max_size=20),
    fragment=st.text(max_size=10),
)
@budget(ci=300, long=20_000)
def test_any_uri_shape_gives_text_and_is_idempotent(scheme, netloc, path, query, fragment):
    once = redact_uri(f"{scheme}://{netloc}/{path}?{query}#{fragment}")
    assert isinstance(once, str)
    assert redact_uri(once) == once


@pytest.mark.generated
@given(case=uris_with_secrets())
@budget(ci=300, long=20_000)
def test_no_generated_secret_is_shown(case):
    uri, expected, evident = case
    shown = redact_uri(uri)
    rest, _, fragment = shown.partition("#")
    rest, _, query = rest.partition("?")
    assert rest.startswith("wss://user:***@")
    path = rest.split("/", 3)[3]
    assert path.split("/") == [REDACTED if e is None else e for e in expected]
    assert query == "***&room=***"  # the bare key is masked whole
    assert fragment == REDACTED
    for secret in (s for s in evident if len(s) > 12):  # longer than an ordinary short id
        assert secret not in shown
        assert quote(secret, safe="") not in shown
    assert redact_uri(shown) == shown


@pytest.mark.generated
@given(
    host=st.sampled_from(HOSTS),
    segments=st.lists(ordinary_segments, max_size=8),
    names=st.lists(st.sampled_from(WORDS), max_size=3),
)
@budget(ci=300, long=20_000)
def test_ordinary_uris_come_back_unchanged(host, segments, names):
    uri = f"wss://{host}/{'/'.join(segments)}"
    assert redact_uri(uri) == uri
    with_query = uri + "?" + "&".join(f"{name}=1" for name in names) if names else uri
    assert redact_uri(with_query) == with_query.replace("=1", "=***")


@pytest.mark.generated
@given(
    case=uris_with_secrets(),
    before=st.text(max_size=20).map(lambda t: t + " "),
    after=st.text(max_size=20).map(lambda t: " " + t),
)
@budget(ci=300, long=20_000)
def test_uris_in_text_are_redacted_as_alone(case, before, after):
    uri, _, _ = case
    shown = redact_text(before + uri + after)
    assert shown == redact_text(before) + redact_uri(uri) + redact_text(after)
    assert redact_text(shown) == shown


@pytest.mark.generated
@given(text=st.text())
@budget(ci=300, long=20_000)
def test_any_text_in_redact_text_is_idempotent(text):
    assert redact_text(redact_text(text)) == redact_text(text)


@pytest.mark.generated
@given(segment=st.text(), after=st.text())
@budget(ci=300, long=20_000)
def test_the_rule_never_raises(segment, after):
    assert looks_like_secret(segment, after) in (True, False)


# Issue 25, item 6: a query key without a value may be the secret itself.


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("wss://h/ws?SECRET", "wss://h/ws?***"),
        ("wss://h/ws?hunter2", "wss://h/ws?***"),
        ("wss://h/ws?token", "wss://h/ws?***"),
        ("wss://h/ws?room=r1&hunter2", "wss://h/ws?room=***&***"),
        ("wss://h/ws?hunter2&room=r1", "wss://h/ws?***&room=***"),
        ("wss://h/ws?a=&b", "wss://h/ws?a=***&***"),
        ("/ws?SECRET", "/ws?***"),
        ("wss://h/ws?SECRET#frag", "wss://h/ws?***#***"),
    ],
)
def test_bare_query_keys_are_masked_whole(uri, expected):
    assert redact_uri(uri) == expected
    assert redact_uri(expected) == expected
    if uri.startswith("wss:"):  # in free text, a URI starts with its scheme
        said = redact_text(f"cannot connect to {uri} - refused")
        assert said == f"cannot connect to {expected} - refused"


@pytest.mark.generated
@given(
    key=st.text(string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=40),
    before=st.lists(st.sampled_from(WORDS), max_size=2),
)
@budget(ci=200, long=20_000)
def test_no_bare_query_key_is_shown(key, before):
    pairs = [f"{name}=1" for name in before] + [key]
    shown = redact_uri("wss://bot.example.com/ws?" + "&".join(pairs))
    query = shown.partition("?")[2]
    assert query.split("&")[-1] == REDACTED
    assert redact_uri(shown) == shown
