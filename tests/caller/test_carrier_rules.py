"""The carrier's rules on what a bot sends, reported per call (issue 26, item 3).

Pipecat's own phone bot (``support/phone_bot.py``: ``FastAPIWebsocketTransport``
with Pipecat's serializer for the carrier it detects) echoes the caller. Its
Twilio serializer keeps Twilio's rules; its Exotel serializer sends media in
pieces Exotel documents as invalid (not whole 320-byte frames, under 3.2 kB),
and every one is counted.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipecat_wsclient.caller.call import CallOptions, run_call
from support.processes import phone_bot

pytestmark = pytest.mark.slow  # Pipecat's phone bot in a subprocess


def _speech(secs: float, rate: int = 8000) -> bytes:
    t = np.arange(int(secs * rate)) / rate
    x = 6000 * np.sin(2 * np.pi * 300 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return x.astype("<i2").tobytes()


@pytest.fixture(scope="module")
def bot():
    with phone_bot() as running:
        yield running


async def test_pipecats_twilio_bot_breaks_no_rule(bot) -> None:
    result = await run_call(CallOptions(bot.uri, protocol="twilio", audio=_speech(1.0), listen=1.0))
    assert result.exit_code == 0, result.error
    assert result.heard_secs > 0.5
    assert result.carrier_errors == {}


async def test_pipecats_exotel_bot_is_reported_breaking_exotels_chunk_rule(bot) -> None:
    result = await run_call(CallOptions(bot.uri, protocol="exotel", audio=_speech(1.0), listen=1.0))
    assert result.exit_code == 0, result.error  # reported, not failed (without --strict)
    errors = result.carrier_errors
    # Pipecat's Exotel serializer sends what its resampler gives (1516 bytes, 95 ms).
    broken = {"media not a multiple of 320 bytes", "media under 3200 bytes"}
    assert errors and set(errors) <= broken, errors
    assert sum(kind["count"] for kind in errors.values()) >= 10, errors
    for kind in errors.values():
        assert kind["example"].endswith("bytes of audio") and kind["code"] is None
    assert result.as_dict()["carrier_errors"] == errors  # in --json


async def test_strict_fails_the_call_with_exit_9_naming_the_rule(bot, tmp_path) -> None:
    from pipecat_wsclient.audio.wav import write_wav
    from support.commands import cli

    clip = tmp_path / "q.wav"
    write_wav(clip, _speech(1.0), 8000)
    code, out, err = await cli(
        "call", bot.uri, "--protocol", "exotel", "--play", str(clip), "--listen", "1",
        "--strict", "--json", timeout=60,
    )  # fmt: skip
    assert code == 9, err
    report = __import__("json").loads(out)
    assert report["carrier_errors"] and "the bot broke the carrier's rules" in report["error"]
    code, _, err = await cli(
        "call", bot.uri, "--protocol", "twilio", "--play", str(clip), "--listen", "1",
        "--strict", timeout=60,
    )  # fmt: skip
    assert code == 0, err  # Pipecat's Twilio serializer keeps Twilio's rules


async def test_the_table_names_the_rules_broken(bot, tmp_path) -> None:
    from pipecat_wsclient.audio.wav import write_wav
    from support.commands import cli

    clip = tmp_path / "q.wav"
    write_wav(clip, _speech(1.0), 8000)
    code, out, err = await cli(
        "call", bot.uri, "--protocol", "exotel", "--play", str(clip), "--listen", "1",
        timeout=60,
    )  # fmt: skip
    assert code == 0, err
    assert "carrier rules broken" in out and "bytes" in out, out
