#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Pure PCM analysis, no I/O but WAV files: levels, voice activity, playback tracks, turns.

Nothing here imports another package of ``pipecat_wsclient``.
"""
