#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Wire protocols for the client transport: serializers, one file each."""

from pipecat_wsclient.protocols.asterisk import AsteriskSerializer
from pipecat_wsclient.protocols.exotel import ExotelCarrierSerializer
from pipecat_wsclient.protocols.plivo import PlivoCarrierSerializer
from pipecat_wsclient.protocols.raw import RawPCMSerializer
from pipecat_wsclient.protocols.telnyx import TelnyxCarrierSerializer
from pipecat_wsclient.protocols.twilio import TwilioCarrierSerializer
from pipecat_wsclient.protocols.vonage import VonageCarrierSerializer

__all__ = [
    "AsteriskSerializer",
    "ExotelCarrierSerializer",
    "PlivoCarrierSerializer",
    "RawPCMSerializer",
    "TelnyxCarrierSerializer",
    "TwilioCarrierSerializer",
    "VonageCarrierSerializer",
]
