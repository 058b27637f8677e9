#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""WAV files and PCM conversions: where audio is read and written (no I/O but files).

All audio is 16-bit little-endian PCM. Reading resamples through
:mod:`pipecat_wsclient.audio.resample`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from pipecat_wsclient.audio.resample import resample_float


def read_wav(path: str | Path, rate: int) -> bytes:
    """Read a PCM WAV file of any rate, width and channel count as mono at ``rate``.

    Args:
        path: The file.
        rate: The sample rate wanted.

    Returns:
        16-bit mono PCM at ``rate``.

    Raises:
        ValueError: If the file cannot be read or is not PCM WAV.
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a PCM WAV file ({e})") from e
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from e
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)) | (
            b[:, 2].astype(np.int8).astype(np.int32) << 16
        )
        samples = ints.astype(np.float32) / 2**23
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    mono = samples.reshape(-1, channels).mean(axis=1)
    return float_to_pcm(resample_float(mono, src_rate, rate))


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
