#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Wire protocols for the client transport: serializers, one file each."""

from pipecat_wsclient.protocols.raw import RawPCMSerializer

__all__ = ["RawPCMSerializer"]
