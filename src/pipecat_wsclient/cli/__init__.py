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
"""
