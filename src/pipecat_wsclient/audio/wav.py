#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Audio files and PCM conversions: where audio is read and written (no I/O but files).

All audio is 16-bit little-endian PCM. Reading resamples through
:mod:`pipecat_wsclient.audio.resample`. A file is checked before it is
read (:func:`check_wav`): what its header claims (rate, channels, length,
chunk sizes) must be sane and held by the file, or it is one line naming
the file and the cause, never a traceback or gigabytes of memory.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import soundfile

from pipecat_wsclient.audio.resample import resample_float

MAX_READ_SECS = 3600.0
"""The longest audio file read (an hour): a longer one is refused, not loaded."""

RATE_RANGE = (4000, 192000)
"""Sample rates a file may have."""

MAX_CHANNELS = 32
"""Most channels a file may have (they are mixed to mono)."""

MAX_READ_FRAMES = int(MAX_READ_SECS * 48000)
"""Most sample frames read (an hour at 48 kHz): the mono mix is held in memory."""

_BLOCK_FRAMES = 1 << 16
"""Frames read at a time: only one block of all the channels is held."""


def check_wav(path: str | Path) -> None:
    """Check an audio file's header without reading its audio.

    Args:
        path: The file.

    Raises:
        ValueError: In one line naming the file and the cause: no such file,
            not audio ``soundfile`` reads, a RIFF chunk (the data or any
            other) that claims more bytes than the file holds, a rate
            outside :data:`RATE_RANGE`, more than :data:`MAX_CHANNELS`
            channels, longer than :data:`MAX_READ_SECS` or
            :data:`MAX_READ_FRAMES`.
    """
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    _check_riff_chunks(Path(path))
    try:
        info = soundfile.info(str(path))
    except OSError as e:
        raise ValueError(f"{path}: {getattr(e, 'strerror', None) or _one_line(e)}") from None
    except Exception as e:  # soundfile's LibsndfileError (a RuntimeError), TypeError...
        raise ValueError(f"{path}: not an audio file soundfile can read ({_one_line(e)})") from None
    if not RATE_RANGE[0] <= info.samplerate <= RATE_RANGE[1]:
        raise ValueError(f"{path}: sample rate {info.samplerate} Hz is not {RATE_RANGE} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise ValueError(f"{path}: {info.channels} channels (1..{MAX_CHANNELS} are read)")
    if info.frames > MAX_READ_SECS * info.samplerate or info.frames > MAX_READ_FRAMES:
        raise ValueError(
            f"{path}: longer than {MAX_READ_SECS:.0f} s or {MAX_READ_FRAMES} samples "
            f"({info.duration:.0f} s, {info.frames} samples)"
        )


def _check_riff_chunks(path: Path) -> None:
    """Fail if a RIFF/WAVE chunk claims more bytes than the file holds (a lying header).

    ``libsndfile`` quietly reads what is there; we say the file is damaged.
    Files that are not RIFF WAVE are left to ``soundfile``.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return
            order = "<I" if head[:4] == b"RIFF" else ">I"
            at = 12
            while at + 8 <= size:
                f.seek(at)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return
                (claimed,) = struct.unpack(order, chunk[4:8])
                held = size - at - 8
                if claimed > held:
                    name = chunk[:4].decode("latin-1").encode("unicode_escape").decode()
                    raise ValueError(
                        f"{path}: its '{name}' chunk claims {claimed} bytes, the file holds "
                        f"{held} after it (a truncated or damaged file)"
                    )
                if chunk[:4] == b"data":
                    return
                at += 8 + claimed + (claimed & 1)
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or _one_line(e)}") from None


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
        ValueError: If the file cannot be read, is not audio, or its header
            is not sane (see :func:`check_wav`): one line naming the file and
            the cause.
    """
    check_wav(path)
    try:
        with soundfile.SoundFile(str(path)) as f:
            src_rate = f.samplerate
            mono = np.empty(min(f.frames, MAX_READ_FRAMES), dtype=np.float32)
            filled = 0
            for block in f.blocks(_BLOCK_FRAMES, dtype="float32", always_2d=True):
                block = block[: len(mono) - filled]
                mono[filled : filled + len(block)] = block.mean(axis=1)
                filled += len(block)
    except (OSError, RuntimeError, ValueError, TypeError, MemoryError) as e:
        raise ValueError(f"{path}: cannot read its audio ({_one_line(e)})") from None
    return float_to_pcm(resample_float(mono[:filled], int(src_rate), rate))


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
