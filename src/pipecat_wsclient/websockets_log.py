#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The logger ``websockets`` writes to for our connections, with secrets masked.

``websockets`` logs handshake requests and responses at debug level, with
the URI's query string and the headers. Every record that goes through
:data:`WEBSOCKETS_LOGGER` has its query values and credential headers
(``Authorization``, cookies, anything named like a token, key or secret)
replaced by ``***`` before any handler sees it.
"""

from __future__ import annotations

import logging
import re

_QUERY_VALUE = re.compile(r"([?&][^=&\s]+=)[^&\s#]*")
_SECRET_HEADER = re.compile(
    r"^([<>] (?:authorization|proxy-authorization|cookie|set-cookie|[\w-]*(?:token|key|secret)"
    r"[\w-]*): ).*$",
    re.IGNORECASE,
)


class _RedactingFilter(logging.Filter):
    """Mask query values and credential headers in websockets' debug log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = _QUERY_VALUE.sub(r"\1***", record.getMessage())
        record.msg, record.args = _SECRET_HEADER.sub(r"\1***", message), ()
        return True


WEBSOCKETS_LOGGER = logging.getLogger("pipecat_wsclient.websockets")
"""The standard-library logger ``websockets`` logs to for our connections, redacted."""
WEBSOCKETS_LOGGER.addFilter(_RedactingFilter())
