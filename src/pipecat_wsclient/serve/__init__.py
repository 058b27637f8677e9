#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The local test voice server (``pipecat-wsclient serve``): modes echo, tone, record, bot."""
