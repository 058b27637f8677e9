"""What a hostile client or web page can do to ``serve``: nothing (issue 25).

A message of any size, a web page in the user's browser (it sends an
``Origin``), a client that floods and never reads: refused or bounded.
"""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pipecat_wsclient.serve.modes import MAX_ECHO_BYTES
from pipecat_wsclient.serve.server import MAX_MESSAGE_BYTES, ServeOptions, VoiceServer


async def test_a_message_over_the_limit_closes_with_1009() -> None:
    async with VoiceServer(ServeOptions(port=0, mode="echo")) as server:
        async with connect(server.uri, max_size=None) as ws:
            await ws.send(b"\x00" * (MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_web_page_cannot_connect() -> None:
    """A browser always sends its page's Origin; serve takes clients that send none."""
    async with VoiceServer(ServeOptions(port=0, mode="record")) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.uri, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with connect(server.uri) as ws:  # a client without an Origin is fine
            await ws.send(b"\x00\x00" * 160)


async def test_a_client_that_floods_and_never_reads_is_bounded() -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        async with VoiceServer(ServeOptions(port=0, mode="echo", delay=5.0)) as server:
            async with connect(server.uri, max_queue=1) as ws:
                chunk = b"\x00" * 65536
                for _ in range(4 * MAX_ECHO_BYTES // len(chunk)):
                    await ws.send(chunk)
                await asyncio.sleep(0.2)
    finally:
        logger.remove(sink)
    assert any("dropping its echo" in w for w in warnings), warnings
