#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The load runner (``pipecat-wsclient load``): many callers, percentiles, worker processes."""
