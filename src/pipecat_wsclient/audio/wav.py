#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio files and PCM conversions: where audio is read and written (no I/O but files).

All audio is 16-bit little-endian PCM. Reading resamples through
:mod:`pipecat_wsclient.audio.resample`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soundfile

from pipecat_wsclient.audio.resample import resample_float

MAX_READ_SECS = 3600.0
"""The longest audio file read (an hour): a longer one is refused, not loaded."""

RATE_RANGE = (4000, 192000)
"""Sample rates a file may have."""


def read_wav(path: str | Path, rate: int) -> bytes:
    """Read an audio file as 16-bit mono PCM at ``rate``: whatever ``soundfile`` reads.

    WAV of any sample format (8/16/24/32-bit integer, float, mu-law, A-law),
    FLAC, OGG; any rate and channel count (the channels are mixed).

    Args:
        path: The file.
        rate: The sample rate wanted.

    Returns:
        16-bit mono PCM at ``rate``.

    Raises:
        ValueError: If the file cannot be read, is not audio, claims an
            impossible rate, or is longer than :data:`MAX_READ_SECS`
            (one line naming the file and the cause).
    """
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    try:
        info = soundfile.info(str(path))
    except OSError as e:
        raise ValueError(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    except (RuntimeError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not an audio file soundfile can read ({_one_line(e)})") from None
    if not RATE_RANGE[0] <= info.samplerate <= RATE_RANGE[1]:
        raise ValueError(f"{path}: sample rate {info.samplerate} Hz is not {RATE_RANGE} Hz")
    if info.frames > MAX_READ_SECS * info.samplerate:
        raise ValueError(f"{path}: longer than {MAX_READ_SECS:.0f} s ({info.duration:.0f} s)")
    try:
        samples, src_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, ValueError, TypeError, MemoryError) as e:
        raise ValueError(f"{path}: cannot read its audio ({_one_line(e)})") from None
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return float_to_pcm(resample_float(mono, int(src_rate), rate))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def write_wav(path: str | Path, pcm: bytes, rate: int, channels: int = 1) -> None:
    """Write 16-bit PCM (interleaved when ``channels`` > 1) to a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """16-bit PCM to floats in [-1, 1)."""
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768


def float_to_pcm(samples: np.ndarray) -> bytes:
    """Floats in [-1, 1] to 16-bit PCM (clipped)."""
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def write_stereo(path: str | Path, left: np.ndarray, right: np.ndarray, rate: int) -> None:
    """Write two float tracks of one length as a stereo 16-bit WAV (a call: us left)."""
    stereo = np.stack([left, right], axis=1).reshape(-1)
    write_wav(path, float_to_pcm(stereo), rate, channels=2)
