"""The carriers' rules, checked against what Pipecat's own serializers send (issue 26, item 3).

Pipecat's serializers are the bots' side of each carrier in the field: what
they send for 20 ms frames of audio, a clear and a mark is checked against
the carrier's documented rules. Pipecat's Twilio, Telnyx and Plivo
serializers keep them; its Exotel serializer sends 640-byte media messages
(Exotel wants at least 3.2 kB in multiples of 320 bytes), and a Vonage bot
that sends 40 ms frames breaks Vonage's exactly-20-ms rule.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame, StartFrame

from pipecat_wsclient.protocols.rules import Violations, rules_for

STREAM = "MZ" + "0" * 32


async def _sent_by(serializer, rate: int, frames: int, secs: float = 0.02) -> list[str | bytes]:
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    out = []
    for _ in range(frames):
        pcm = b"\x10\x00" * int(rate * secs)
        out.append(await serializer.serialize(OutputAudioRawFrame(pcm, rate, 1)))
    out.append(await serializer.serialize(InterruptionFrame()))
    return [m for m in out if m is not None]


def _checked(protocol: str, messages: list[str | bytes], **kw) -> Violations:
    rules, log = rules_for(protocol, **kw), Violations()
    for message in messages:
        log.add(rules.check(message))
    return log


async def test_pipecats_twilio_telnyx_and_plivo_serializers_keep_the_rules() -> None:
    from pipecat.serializers.plivo import PlivoFrameSerializer
    from pipecat.serializers.telnyx import TelnyxFrameSerializer
    from pipecat.serializers.twilio import TwilioFrameSerializer

    no_hang_up = TwilioFrameSerializer.InputParams(auto_hang_up=False)
    twilio = await _sent_by(TwilioFrameSerializer(STREAM, params=no_hang_up), 8000, 5)
    assert _checked("twilio", twilio, stream_id=STREAM).counts == {}
    telnyx = TelnyxFrameSerializer(
        "st-1",
        outbound_encoding="PCMU",
        inbound_encoding="PCMU",
        params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
    )
    assert _checked("telnyx", await _sent_by(telnyx, 8000, 5), stream_id="st-1").counts == {}
    plivo_params = PlivoFrameSerializer.InputParams(auto_hang_up=False)
    plivo = await _sent_by(PlivoFrameSerializer("st-1", params=plivo_params), 8000, 5)
    assert _checked("plivo", plivo).counts == {}


async def test_pipecats_exotel_serializer_breaks_exotels_chunk_rule() -> None:
    from pipecat.serializers.exotel import ExotelFrameSerializer

    sent = await _sent_by(ExotelFrameSerializer("st-1"), 8000, 5, secs=0.04)
    log = _checked("exotel", sent)
    assert log.counts == {"media under 3200 bytes": 5}, log.as_dict()
    assert log.as_dict()["media under 3200 bytes"]["example"] == "640 bytes of audio"


async def test_a_vonage_bot_sending_40_ms_frames_breaks_the_20_ms_rule() -> None:
    from pipecat.serializers.vonage import VonageFrameSerializer

    ok = await _sent_by(VonageFrameSerializer(), 16000, 4)
    assert _checked("vonage", ok, sample_rate=16000).counts == {}
    long = await _sent_by(VonageFrameSerializer(), 16000, 4, secs=0.04)
    log = _checked("vonage", long, sample_rate=16000)
    assert sum(log.counts.values()) >= 4, log.as_dict()


@pytest.mark.parametrize(
    ("message", "kind", "code"),
    [
        (b"\x00" * 160, "binary frame", "31950"),
        ("hello", "not JSON", "31951"),
        (f'{{"event": "play", "streamSid": "{STREAM}"}}', "unknown event", "31951"),
        ('{"event": "clear", "streamSid": "MZother"}', "wrong streamSid", "31951"),
        (
            f'{{"event": "media", "streamSid": "{STREAM}", '
            '"media": {"payload": "AAAA", "track": "x"}}',
            "extra field",
            "31951",
        ),
        (
            f'{{"event": "mark", "streamSid": "{STREAM}", "mark": {{}}}}',
            "missing field name",
            "31951",
        ),
        (
            f'{{"event": "media", "streamSid": "{STREAM}", "media": {{"payload": "!!"}}}}',
            "payload not base64",
            "31951",
        ),
    ],
)
def test_twilio_names_each_broken_rule_with_its_code(message, kind: str, code: str) -> None:
    found = rules_for("twilio", stream_id=STREAM).check(message)
    assert [(v.kind, v.code) for v in found] == [(kind, code)]


def test_an_example_is_short_and_never_audio() -> None:
    log = Violations()
    log.add(rules_for("twilio", stream_id=STREAM).check(b"\xff" * 5000))
    log.add(rules_for("twilio", stream_id=STREAM).check("x" * 5000))
    examples = [v["example"] for v in log.as_dict().values()]
    assert examples[0] == "<5000 bytes, binary>" and len(examples[1]) <= 120


@given(
    st.one_of(st.binary(max_size=400), st.text(max_size=400)),
    st.sampled_from(["twilio", "telnyx", "plivo", "exotel", "vonage", "raw"]),
)
def test_no_message_makes_a_rule_raise(data, protocol: str) -> None:
    """Fuzz: anything a bot sends is judged, never an exception."""
    found = rules_for(protocol, stream_id=STREAM).check(data)
    assert all(v.kind and len(v.example) <= 200 for v in found)


@given(
    st.dictionaries(
        st.sampled_from(["event", "streamSid", "media", "mark", "x"]),
        st.one_of(
            st.none(),
            st.text(max_size=8),
            st.integers(),
            st.dictionaries(
                st.sampled_from(["payload", "name", "track"]),
                st.one_of(st.text(max_size=8), st.integers()),
            ),
        ),
    )
)
def test_json_shapes_are_judged_without_raising(message: dict) -> None:
    for protocol in ("twilio", "telnyx", "plivo", "exotel"):
        rules_for(protocol, stream_id=STREAM).check(json.dumps(message))


def test_a_valid_twilio_media_message_passes() -> None:
    payload = base64.b64encode(b"\xff" * 160).decode()
    message = json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": payload}})
    assert rules_for("twilio", stream_id=STREAM).check(message) == []
