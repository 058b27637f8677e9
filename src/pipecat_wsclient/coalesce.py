#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Received audio that arrived together goes into the pipeline as one frame.

When the client keeps up, each message is handled as soon as it arrives
and nothing changes. When it falls behind (many streams on one core, a
pause of the event loop), several messages are already waiting by the time
the receive task runs: their audio is joined into one
``InputAudioRawFrame``, so every processor and observer after the input
takes one turn instead of one per chunk. The cost per audio second then
falls as the load rises, instead of the client falling further behind.
No message waits for another: only what has already arrived is joined.

Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipecat.frames.frames import Frame, InputAudioRawFrame

MAX_BATCH_MESSAGES = 50
"""Most messages taken from the connection at once (about a second of 20 ms chunks)."""


def audio_problem(frame: InputAudioRawFrame) -> str | None:
    """Why received audio cannot be delivered, or None if it can."""
    if frame.sample_rate <= 0:
        return f"sample_rate={frame.sample_rate}"
    if frame.num_channels <= 0:
        return f"num_channels={frame.num_channels}"
    if len(frame.audio) % (2 * frame.num_channels):
        return (
            f"{len(frame.audio)} bytes is not whole 16-bit frames of {frame.num_channels} channels"
        )
    return None


def _plain_audio(frame: Frame) -> bool:
    # Exactly InputAudioRawFrame, valid: a subclass (a user's frame with its
    # own fields), a frame with metadata or audio that cannot be delivered
    # (counted on its own) is passed on as it came.
    return (
        type(frame) is InputAudioRawFrame
        and not frame.metadata
        and bool(frame.audio)
        and audio_problem(frame) is None
    )


def coalesce_audio(frames: Iterable[Frame]) -> list[Frame]:
    """Join runs of plain received audio of one format into single frames.

    Frames keep their order; a run is broken by any other frame, by audio of
    another sample rate, channel count or ``transport_source``, and by audio
    that is not a plain ``InputAudioRawFrame`` without metadata, or that
    cannot be delivered (:func:`audio_problem`: two halves of a sample must
    not make a whole one). A run of one frame is returned
    as it is (the same object).

    Args:
        frames: Frames decoded from messages received together, in order.

    Returns:
        The frames to deliver, in order.
    """
    out: list[Frame] = []
    run: list[InputAudioRawFrame] = []

    def close_run() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first = run[0]
            joined = InputAudioRawFrame(
                audio=b"".join(f.audio for f in run),
                sample_rate=first.sample_rate,
                num_channels=first.num_channels,
            )
            joined.transport_source = first.transport_source
            joined.pts = first.pts
            out.append(joined)
        run.clear()

    for frame in frames:
        if _plain_audio(frame):
            assert isinstance(frame, InputAudioRawFrame)
            if run and (
                frame.sample_rate != run[0].sample_rate
                or frame.num_channels != run[0].num_channels
                or frame.transport_source != run[0].transport_source
            ):
                close_run()
            run.append(frame)
        else:
            close_run()
            out.append(frame)
    close_run()
    return out
