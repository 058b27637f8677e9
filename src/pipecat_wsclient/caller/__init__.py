#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The call engine: one caller for every front end (call, test, load, phone, Locust).

It builds a caller's transport and pipeline, keeps what was sent and heard,
and turns a call into a :class:`~pipecat_wsclient.caller.result.CallResult`
with an outcome code.
"""
