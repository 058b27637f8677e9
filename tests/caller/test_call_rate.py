"""``call`` runs at the carrier's own rate unless told otherwise (issue 22: one set of defaults).

``call``, ``load`` and Locust defaulted to 16 kHz while ``test`` and the phone
ran at the carrier's own 8 kHz: against a carrier, ``call``'s pipeline then
resampled both ways, and the resampler's delay was counted in every response
it measured. Now every front end takes the rate from the one builder.
"""

from __future__ import annotations

import wave

import pytest

from pipecat_wsclient.caller.builder import resolve_rate
from pipecat_wsclient.caller.call import CallOptions, run_call
from pipecat_wsclient.load.run import LoadOptions, LoadRun
from support.processes import phone_bot


@pytest.mark.parametrize(
    ("protocol", "given", "rate"),
    [
        ("twilio", None, 8000),
        ("vonage", None, 16000),
        ("pipecat", None, 16000),
        ("twilio", 16000, 16000),
    ],
)
def test_resolve_rate(protocol, given, rate):
    assert resolve_rate(protocol, given) == rate


def test_load_reads_its_clips_at_the_carriers_rate():
    run = LoadRun(LoadOptions(uris=["ws://127.0.0.1:9/ws"], protocol="telnyx", calls=1))
    assert run.call_options(0).sample_rate == 8000


@pytest.mark.slow
async def test_a_call_to_a_pipecat_twilio_bot_runs_at_8khz(tmp_path):
    record = tmp_path / "call.wav"
    with phone_bot() as bot:
        result = await run_call(
            CallOptions(bot.uri, protocol="twilio", record=record, listen=0.5, duration=3)
        )
        assert result.exit_code == 0, result.error
        assert bot.reports(event="start"), "the bot never saw the carrier's start"
    with wave.open(str(record)) as w:
        assert w.getframerate() == 8000
    assert result.sent_secs > 1.0
