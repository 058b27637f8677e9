#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The pytest plugin: the ``voice_call`` fixture (work in progress)."""
