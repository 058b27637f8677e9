#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``pipecat-wsclient`` command line (install with the ``cli`` extra).

Where things are:

* ``main``: the typer app, one thin function per command.
* ``protocols``: the one registry of wire protocols (every command, and Locust).
* ``options``: the options several commands share, defined once.
* ``render``: the rich tables and live views.
* ``signals``: Ctrl-C and SIGTERM as an ``asyncio.Event``.
* ``call`` and ``result``: one measured call, and what it measured.
* ``load``: many calls, their percentiles and ``--fail-if`` thresholds.
* ``serve``, ``serve_modes``, ``serve_audio``: the local test server, its
  modes (one class each), its decoding and answer tone.
* ``audio``: WAV files, speech detection, timelines; ``plot``: the PNGs.
"""
