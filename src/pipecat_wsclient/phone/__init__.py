#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The browser phone: talk to a WebSocket phone bot with your own voice.

:class:`PhoneServer` serves a page on 127.0.0.1; each press of its Call
button dials the bot with our transport in the carrier's role
(:class:`PhoneCall`), streaming the browser's microphone (echo cancellation
on) to the bot and the bot's answer to the speakers, with live turns
(:mod:`.turns`). ``pipecat-wsclient phone URI`` runs it; ``docs/phone.md``
explains the page, its protocol and why it uses a WebSocket rather than WebRTC.
"""

from pipecat_wsclient.phone.call import PhoneCall, PhoneOptions
from pipecat_wsclient.phone.server import PhoneServer

__all__ = ["PhoneCall", "PhoneOptions", "PhoneServer"]
