"""``serve --mode bot``: the answering phone bot answers a real ``call`` on each carrier.

The bot runs in-process (:class:`BotServer`, eSpeak NG as its TTS, as the
command line builds it); ``call`` runs through the real command line with
its bundled question.
"""

from __future__ import annotations

import json

import pytest

from pipecat_wsclient.scenario.espeak import EspeakTTSService
from pipecat_wsclient.serve.bot import BotOptions, BotServer
from support.commands import cli

pytestmark = pytest.mark.slow  # the answering bot: real calls, speech


def bot_options(protocol: str) -> BotOptions:
    return BotOptions(tts_factory=EspeakTTSService, port=0, protocol=protocol)


@pytest.mark.parametrize("protocol", ["twilio", "telnyx"])
async def test_the_bot_answers_a_call(protocol):
    async with BotServer(bot_options(protocol)) as bot:
        code, out, err = await cli("call", bot.uri, "--protocol", protocol, "--json", timeout=90)
    assert code == 0, err
    report = json.loads(out)
    assert report["end"]["by"] == "caller" and report["reconnects"] == 0
    assert report["heard_secs"] > 1.0  # the answer is spoken, not a click
    assert report["turns"], report
    first = report["turns"][0]["latency_ms"]
    assert first is not None and 500 < first < 3000, report["turns"]
    assert report["latency_p50_ms"] is not None


async def test_a_call_on_another_carriers_protocol_is_refused_not_answered():
    async with BotServer(bot_options("twilio")) as bot:
        code, out, err = await cli("call", bot.uri, "--protocol", "telnyx", "--json", timeout=90)
    report = json.loads(out)
    assert code == 7, (out, err)
    assert report["end"]["by"] == "bot" and report["end"]["code"] == 1008, report["end"]
    assert report["heard_secs"] == 0


def test_the_options_are_checked():
    with pytest.raises(ValueError, match="raw"):
        bot_options("raw")
    with pytest.raises(ValueError, match="port"):
        BotOptions(tts_factory=EspeakTTSService, port=70000)
