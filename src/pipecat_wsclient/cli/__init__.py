#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``pipecat-wsclient`` command line (install with the ``cli`` extra)."""
