#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``pipecat-wsclient`` command line (install with the ``cli`` extra): typer commands only.

Nothing outside this package imports it (but ``python -m pipecat_wsclient``).

* ``app``: the typer app and what the commands share (output, errors, logs).
* ``main``: ``call``, ``serve``, ``phone``, ``demo``; the entry point.
* ``load_command``: ``load``; ``scenarios``: ``test``; ``phone``: the phone's server loop.
* ``options``: the options several commands share, and the checks made before dialing.
* ``render``: the rich tables and live views.

When it is the program (``python -m pipecat_wsclient``, the ``pipecat-wsclient``
script), SIGINT and SIGTERM are taken over here, before Pipecat is imported
(:func:`pipecat_wsclient.caller.signals.guard_process`): a signal while the
command line starts exits at once with 130 or 143, not with a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipecat_wsclient.caller.signals import guard_process


def _is_the_program() -> bool:
    """Whether this process runs the command line (not a library or a test importing it)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == "pipecat_wsclient.__main__":
        return True
    return bool(sys.argv) and Path(sys.argv[0]).name == "pipecat-wsclient"


if _is_the_program():
    guard_process()
