#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A load run's PNG report: the response latency histogram and active calls over time."""

from __future__ import annotations

from pathlib import Path

from pipecat_wsclient.caller.plot import pyplot
from pipecat_wsclient.load.run import LoadReport


def plot_report(path: str | Path, report: LoadReport) -> None:
    """A PNG with the response latency histogram and active calls over time."""
    plt = pyplot()
    fig, (hist, active) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    if report.response_ms:
        hist.hist(report.response_ms, bins=30, color="tab:green")
    hist.set_xlabel("response latency (ms)")
    hist.set_ylabel("turns")
    if report.active_over_time:
        times, counts = zip(*report.active_over_time, strict=True)
        active.step(times, counts, where="post")
    active.set_xlabel("seconds")
    active.set_ylabel("active calls")
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
