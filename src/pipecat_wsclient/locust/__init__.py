#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Locust integration: voice calls as Locust users, reported as Locust requests.

Subclass :class:`VoiceCallUser` in a locustfile and Locust does the rest:
ramping, percentiles, the web UI, CSV files and master/worker distribution::

    from pipecat_wsclient.locust import VoiceCallUser

    class Caller(VoiceCallUser):
        uri = "ws://127.0.0.1:8765/ws"  # or: locust --host ws://...
        turns = 2
        think = 1.5

Each task makes one real call with this package's transport
(:func:`~pipecat_wsclient.caller.call.run_call`, playing the same script of
turns as the ``load`` command) and fires Locust ``request`` events of type
``WS``:

* ``connect``: time to open the WebSocket; a failure (refused, HTTP status,
  TLS, timeout...) is a failed ``connect`` with the error class and the
  one-line reason, e.g. ``CallFailed('http_401: ...')``.
* ``first_answer``: from the first audio sent to the first answer audio heard.
* ``response``: one per turn, from the end of the caller's utterance to the
  start of the answer; a turn left unanswered in a completed call is a failure.
* ``call``: the whole call; a call that connected but did not complete
  (connection lost, an error) is a failed ``call``.

All of a call's events are fired when the call ends.

The modules: :mod:`.user` (the User class), :mod:`.events` (what a call
reports, pure), :mod:`.loop` (the asyncio loop that runs the calls under
gevent).
"""

try:
    import gevent  # noqa: F401
    import locust  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pipecat_wsclient.locust needs Locust: pip install 'pipecat-wsclient[locust]'"
    ) from e

from pipecat_wsclient.locust.events import REQUEST_TYPE, CallEvent, CallFailed, call_events
from pipecat_wsclient.locust.loop import call_in_greenlet
from pipecat_wsclient.locust.user import VoiceCallUser

__all__ = [
    "REQUEST_TYPE",
    "CallEvent",
    "CallFailed",
    "VoiceCallUser",
    "call_events",
    "call_in_greenlet",
]
