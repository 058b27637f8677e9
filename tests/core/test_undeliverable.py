"""Received frames that cannot be delivered are counted decode errors, not tracebacks.

Defect 5 of the reliability issue: Protobuf audio with ``sample_rate=0``
passed decoding, then raised ``ZeroDivisionError`` in delivery: logged with
a traceback for every such message, not rate-limited, not counted. Also
here: audio with a partial sample, and inbound messages dropped before the
pipeline starts counted apart from outbound drops (item 7).
"""

from __future__ import annotations

from loguru import logger

from harness import RATE, client_params, pcm, run_pipeline, wait_for
from pipecat_wsclient import WebsocketClientTransport
from pipecat_wsclient.protobuf_audio import encode_audio
from support.servers import junk_server

BAD = 20


async def test_audio_with_zero_rate_or_partial_samples_is_a_counted_decode_error():
    good = pcm(0.1, seed=5)
    junk = [encode_audio(pcm(0.02), 0, 1) for _ in range(BAD)]
    junk += [encode_audio(pcm(0.02)[:-1], RATE, 1) for _ in range(BAD)]  # odd length
    junk.append(encode_audio(good, RATE, 1))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m), level="WARNING")
    try:
        async with junk_server(junk, then_echo=False) as server:
            t = WebsocketClientTransport(server.uri, client_params())
            async with run_pipeline(t) as p:
                await wait_for(lambda: p.collector.audio() == good, 5)
                await p.end()
    finally:
        logger.remove(sink)
    assert t.stats.decode_errors == 2 * BAD
    assert t.stats.audio_secs_received == 0.1  # only the good one
    assert not [line for line in lines if "Traceback" in line or "ZeroDivision" in line]
    warnings = [line for line in lines if "cannot deliver" in line]
    assert 1 <= len(warnings) <= 2  # rate-limited, naming the cause
    assert "sample_rate=0" in warnings[0]
    assert not p.errors


async def test_inbound_overflow_before_start_is_counted_as_inbound_not_outbound():
    from pipecat_wsclient.input import MAX_PENDING_MESSAGES

    t = WebsocketClientTransport("ws://127.0.0.1:9/ws", client_params())
    source = t.input()  # not started: messages are held
    for n in range(MAX_PENDING_MESSAGES + 5):
        await source.on_message(None, f"m{n}")
    assert t.stats.dropped_in_messages == 5
    assert t.stats.dropped_frames == 0  # outbound drops are another counter
    assert next(iter(source._pending)) == "m5"  # the oldest went first
