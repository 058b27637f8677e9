#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The protocols' shared audio helpers: G.711, the resampler wrapper, fixed-size chunks."""

import struct

from pipecat_wsclient.protocols.audio import (
    AudioCodec,
    Chunker,
    Resampler,
    alaw_to_pcm,
    mulaw_to_pcm,
    pcm_to_alaw,
    pcm_to_mulaw,
    split,
)


def test_g711_silence_and_round_trip():
    silence = b"\x00\x00" * 4
    assert pcm_to_mulaw(silence) == b"\xff" * 4
    assert pcm_to_alaw(silence) == b"\xd5" * 4
    pcm = struct.pack("<4h", 0, 1000, -1000, 8000)
    for encode, decode in ((pcm_to_mulaw, mulaw_to_pcm), (pcm_to_alaw, alaw_to_pcm)):
        back = struct.unpack("<4h", decode(encode(pcm)))
        assert all(abs(a - b) <= 128 for a, b in zip(back, (0, 1000, -1000, 8000), strict=True))


def test_codec_silence_and_frame_bytes():
    ulaw = AudioCodec("ulaw", 8000, 1, "ulaw")
    slin16 = AudioCodec("slin16", 16000, 2, "slin")
    assert ulaw.silence(3) == b"\xff" * 3
    assert slin16.silence(4) == b"\x00" * 4
    assert ulaw.frame_bytes(20) == 160
    assert slin16.frame_bytes(20) == 640
    assert slin16.decode(b"\x01\x02\x03") == b"\x01\x02"


def test_chunker_keeps_the_remainder_and_pads_it():
    chunker = Chunker()
    assert chunker.push(b"a" * 5, 4) == b"a" * 4
    assert len(chunker) == 1
    assert chunker.push(b"b" * 6, 4) == b"abbb"
    assert len(chunker) == 3
    assert chunker.pad(4, lambda n: b"\x00" * n) == b"bbb\x00"
    assert len(chunker) == 0
    assert chunker.pad(4, lambda n: b"\x00" * n) == b""
    chunker.push(b"c" * 3, 4)
    assert chunker.clear() == 3


def test_split_in_fixed_pieces():
    assert split(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert split(b"", 3) == []


async def test_resampler_skips_matching_rates_and_flushes_once():
    resampler = Resampler()
    pcm = b"\x00\x00" * 160
    assert await resampler.resample(pcm, 8000, 8000) == pcm
    assert not resampler.pending
    out = await resampler.resample(b"\x00\x00" * 480, 24000, 8000)
    assert resampler.pending
    rest = await resampler.flush()
    assert not resampler.pending
    assert len(out) + len(rest) <= 2 * 160 + 2 * 16 + 2 * 34  # + the filter's delay
    assert await resampler.flush() == b""
