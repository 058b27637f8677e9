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

from pipecat_wsclient.audio.wav import read_wav

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


def test_a_header_claiming_4_gb_reads_what_is_there(tmp_path):
    path = tmp_path / "liar.wav"
    path.write_bytes(header(0xFFFFFFF0) + b"\x10\x00" * 8000)  # says 4 GB, holds 1 s
    try:
        pcm = read_wav(path, RATE)
    except ValueError as e:  # refusing it is fine too, in one line
        assert "\n" not in str(e)
    else:
        assert len(pcm) <= 2 * 8000 + 64
