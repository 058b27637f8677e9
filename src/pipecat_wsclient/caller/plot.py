#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A call's timeline as a PNG (matplotlib, imported on first use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PLOT_SIZE_PX = (1200, 500)
"""Width and height of a call's PNG."""

MARKERS = {
    "speech_end": ("end of our speech", "tab:blue", "--"),
    "first_response": ("first response audio", "tab:green", "-"),
    "interruption": ("interruption", "tab:red", ":"),
    "reconnect": ("reconnect", "tab:purple", "-."),
    "barge_in": ("barge-in (our onset)", "tab:orange", "-"),
    "dtmf": ("DTMF", "tab:brown", "-."),
    "clear": ("bot's clear", "tab:red", ":"),
}


def plot_call(
    path: str | Path,
    sent: np.ndarray,
    heard: np.ndarray,
    rate: int,
    markers: dict[str, list[float]],
) -> None:
    """Write a PNG of the sent and heard waveforms on one time axis.

    Args:
        path: The PNG file to write.
        sent: What we sent, rendered at playback time (float samples).
        heard: What we heard, on the same timeline.
        rate: Sample rate of both.
        markers: Times in seconds by kind (keys of :data:`MARKERS`).
    """
    plt = pyplot()
    dpi = 100
    fig, axes = plt.subplots(
        2, 1, sharex=True, figsize=(PLOT_SIZE_PX[0] / dpi, PLOT_SIZE_PX[1] / dpi), dpi=dpi
    )
    for ax, samples, title in ((axes[0], sent, "sent (caller)"), (axes[1], heard, "heard")):
        step = max(1, len(samples) // 20000)  # enough points for the eye
        t = np.arange(0, len(samples), step) / rate
        ax.plot(t, samples[::step], linewidth=0.5, color="0.3")
        ax.set_ylim(-1, 1)
        ax.set_ylabel(title)
        for kind, times in markers.items():
            label, color, style = MARKERS.get(kind, (kind, "black", "-"))
            for i, x in enumerate(times):
                ax.axvline(x, color=color, linestyle=style, label=label if i == 0 else None)
    axes[1].set_xlabel("seconds")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(str(path), dpi=dpi)
    plt.close(fig)


def pyplot() -> Any:
    """Matplotlib's pyplot on the file-only backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
