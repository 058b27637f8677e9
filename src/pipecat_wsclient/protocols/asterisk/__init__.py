#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Asterisk's WebSocket channel driver (``chan_websocket``), with the bot as the client.

:class:`AsteriskSerializer` makes the client transport speak the protocol
in *incoming* mode: the bot dials ``ws(s)://<asterisk>/media/<connection_id>``
(:func:`asterisk_media_uri`, :func:`asterisk_params`). The Asterisk side,
the behaviour and the sources: ``docs/asterisk.md``.

Modules: :mod:`.control` (control messages, both formats), :mod:`.flow`
(XOFF/XON, the queue estimate, the hold queue), :mod:`.codec` (media
formats), :mod:`.connect` (URI and parameters), :mod:`.serializer` and
:mod:`.outbound` (the serializer), :mod:`.stats`.
"""

from pipecat_wsclient.protocols.asterisk.codec import CODECS, MAX_MESSAGE_BYTES, AsteriskCodec
from pipecat_wsclient.protocols.asterisk.connect import (
    MEDIA_SUBPROTOCOL,
    asterisk_media_uri,
    asterisk_params,
)
from pipecat_wsclient.protocols.asterisk.control import (
    COMMANDS,
    EVENTS,
    MAX_COMMAND_BYTES,
    ORDERED_COMMANDS,
    POSITIONAL_PARAMS,
    ControlFormat,
    ControlMessage,
    MediaStart,
    format_control,
    parse_control,
)
from pipecat_wsclient.protocols.asterisk.flow import (
    DEFAULT_MAX_QUEUED_FRAMES,
    DEFAULT_RESUME_QUEUED_FRAMES,
    QUEUE_LENGTH_MAX,
    QUEUE_XOFF_LEVEL,
    QUEUE_XON_LEVEL,
    FlowControl,
)
from pipecat_wsclient.protocols.asterisk.serializer import AsteriskSerializer, EventHandler
from pipecat_wsclient.protocols.asterisk.stats import AsteriskStats
from pipecat_wsclient.protocols.audio import alaw_to_pcm, mulaw_to_pcm, pcm_to_alaw, pcm_to_mulaw

__all__ = [
    "CODECS",
    "COMMANDS",
    "DEFAULT_MAX_QUEUED_FRAMES",
    "DEFAULT_RESUME_QUEUED_FRAMES",
    "EVENTS",
    "MAX_COMMAND_BYTES",
    "MAX_MESSAGE_BYTES",
    "MEDIA_SUBPROTOCOL",
    "ORDERED_COMMANDS",
    "POSITIONAL_PARAMS",
    "QUEUE_LENGTH_MAX",
    "QUEUE_XOFF_LEVEL",
    "QUEUE_XON_LEVEL",
    "AsteriskCodec",
    "AsteriskSerializer",
    "AsteriskStats",
    "ControlFormat",
    "ControlMessage",
    "EventHandler",
    "FlowControl",
    "MediaStart",
    "alaw_to_pcm",
    "asterisk_media_uri",
    "asterisk_params",
    "format_control",
    "mulaw_to_pcm",
    "parse_control",
    "pcm_to_alaw",
    "pcm_to_mulaw",
]
