#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Scripted test calls: talk to a voice bot as a caller would, and check what it did.

A scenario (a YAML file, or Python through the pytest plugin) is a list of
turns: say something (offline TTS), play a WAV, talk over the bot (barge-in),
press DTMF keys, wait, hang up. Each turn is measured (response latency,
barge-in reaction, what the bot said, transcribed by a Pipecat STT service)
and checked against its expectations.

Needs the ``test`` extra: ``pip install 'pipecat-wsclient[test]'``.
"""
