"""Reading audio files (audio/wav.py): whatever soundfile reads, bad files in one line.

``--play`` and every clip go through ``read_wav``: WAV of any sample format,
FLAC, OGG, any rate and channel count, mixed to mono at the call's rate. A
file that is not audio, claims an impossible size or rate, or is too long is a
one-line ValueError naming it, never a traceback or a runaway allocation.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile

from pipecat_wsclient.audio.wav import MAX_CHANNELS, check_wav, float_to_pcm, read_wav

RATE = 8000


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * 300 * t)


@pytest.mark.parametrize(
    ("subtype", "fmt", "ext"),
    [
        ("PCM_16", "WAV", "wav"),
        ("PCM_24", "WAV", "wav"),
        ("PCM_32", "WAV", "wav"),
        ("FLOAT", "WAV", "wav"),
        ("ULAW", "WAV", "wav"),
        ("ALAW", "WAV", "wav"),
        ("PCM_16", "FLAC", "flac"),
        ("VORBIS", "OGG", "ogg"),
    ],
)
def test_reads_any_format_resampled_to_the_calls_rate(tmp_path, subtype, fmt, ext):
    path = tmp_path / f"clip.{ext}"
    soundfile.write(path, np.stack([tone(), tone()], axis=1), RATE, subtype=subtype, format=fmt)
    pcm = np.frombuffer(read_wav(path, 16000), "<i2").astype(np.float64) / 32768
    assert len(pcm) == 16000
    rms = np.sqrt(np.mean(pcm[1000:-1000] ** 2))
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.02  # the level is kept (stereo mixed, not summed)


def header(data_size: int, rate: int = RATE) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
    )


@pytest.mark.parametrize(
    ("name", "content", "cause"),
    [
        ("missing.wav", None, "no such file"),
        ("text.wav", b"hello, not audio\n" * 10, "not an audio file"),
        ("empty.wav", b"", "not an audio file"),
        ("rate1.wav", header(3200, rate=1) + bytes(3200), "sample rate"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, name, content, cause):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_wav(path, 16000)
    message = str(info.value)
    assert cause in message and name in message and "\n" not in message


def test_a_header_claiming_4_gb_is_refused_in_one_line(tmp_path):
    """Issue 25, item 4: libsndfile reads what is there; we say the file lies."""
    path = tmp_path / "liar.wav"
    path.write_bytes(header(0xFFFFFFF0) + b"\x10\x00" * 8000)  # says 4 GB, holds 1 s
    with pytest.raises(ValueError) as info:
        read_wav(path, RATE)
    message = str(info.value)
    assert message == (
        f"{path}: its 'data' chunk claims 4294967280 bytes, the file holds 16000 after it "
        "(a truncated or damaged file)"
    )


def chunk(name: bytes, claimed: int, data: bytes) -> bytes:
    return name + struct.pack("<I", claimed) + data


@pytest.mark.parametrize(
    ("chunks", "cause"),
    [
        ([chunk(b"LIST", 0xFFFFFF00, b"x" * 10)], "'LIST' chunk claims 4294967040 bytes"),
        ([chunk(b"\x1b[2J", 0x7FFFFFFF, b"")], "'\\x1b[2J' chunk claims 2147483647 bytes"),
        ([chunk(b"data", 16001, b"\x00" * 16000)], "'data' chunk claims 16001 bytes"),
    ],
)
def test_a_chunk_bigger_than_the_file_is_refused(tmp_path, chunks, cause):
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    body = b"WAVE" + chunk(b"fmt ", 16, fmt) + b"".join(chunks)
    if not chunks[0].startswith(b"data"):
        body += chunk(b"data", 16000, b"\x00" * 16000)
    path = tmp_path / "chunk.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ValueError) as info:
        check_wav(path)
    assert cause in str(info.value) and "\n" not in str(info.value)
    assert "\x1b" not in str(info.value)


def test_too_many_channels_are_refused(tmp_path):
    fmt = struct.pack("<HHIIHH", 1, MAX_CHANNELS + 1, RATE, RATE * 66, 66, 16)
    body = b"WAVE" + chunk(b"fmt ", 16, fmt) + chunk(b"data", 66 * 10, bytes(66 * 10))
    path = tmp_path / "many.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ValueError, match=f"{MAX_CHANNELS + 1} channels"):
        read_wav(path, RATE)


def test_odd_sized_chunks_are_padded_as_riff_says(tmp_path):
    """A 3-byte chunk takes 4 (its pad byte): the walk finds the data after it."""
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    body = b"WAVE" + chunk(b"fmt ", 16, fmt) + chunk(b"note", 3, b"abc\x00")
    body += chunk(b"data", 3200, b"\x10\x00" * 1600)
    path = tmp_path / "padded.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    check_wav(path)
    assert len(read_wav(path, RATE)) == 3200


def test_many_channels_are_mixed_block_by_block_as_before(tmp_path):
    """Reading in blocks (one block of all channels held at a time) mixes as reading it all."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal((3 * 65536 + 123, 5)) * 0.1).astype(np.float32)
    path = tmp_path / "five.wav"
    soundfile.write(path, samples, RATE, subtype="FLOAT")
    expected = float_to_pcm(soundfile.read(path, dtype="float32")[0].mean(axis=1))
    assert read_wav(path, RATE) == expected
