#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the transport asks of a serializer beyond Pipecat's ``FrameSerializer``.

Any Pipecat ``FrameSerializer`` works as it is. A protocol that needs more
(a hello on every connection, a life of its own, one chunk framed as several
messages, DTMF on the wire) implements the optional hooks of
:class:`SerializerHooks`; the transport looks each one up by name and uses it
when it is there. Nothing here does I/O: this module only says what the
hooks are and how the transport finds them.

Example, a protocol with a hello and a task of its own::

    class HelloSerializer(FrameSerializer):
        supports_native_dtmf = False

        async def session_start_messages(self) -> list[str | bytes]:
            return ['{"event": "hello"}']

        async def attach(self, io: ProtocolIO) -> None:
            self._io = io
            io.create_task(self._heartbeat(), "heartbeat")

        async def _heartbeat(self) -> None:
            while True:
                await asyncio.sleep(5)
                await self._io.send('{"event": "ping"}')

        async def serialize(self, frame: Frame) -> str | bytes | list[str | bytes] | None:
            ...

        async def deserialize(self, data: str | bytes) -> Frame | None:
            ...
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

from pipecat.frames.frames import Frame

Payload = str | bytes | list[str | bytes] | None
"""What ``serialize`` may return: one message, several (sent in order), or none."""


class ProtocolIO(Protocol):
    """What a protocol may do by itself, given to its ``attach(io)`` hook.

    The transport's implementation sends on the current connection, delivers
    into the pipeline as if the frame had been received, and cancels the
    tasks when the transport stops.
    """

    async def send(self, message: str | bytes) -> bool:
        """Send a message now, ahead of anything queued.

        Returns:
            False if there is no open connection (the message is not held).
        """
        ...

    async def deliver(self, frame: Frame) -> None:
        """Push a frame into the pipeline as if it had been received."""
        ...

    async def end_call(self, reason: str) -> None:
        """The far end hung up (a protocol's hang-up event): end the pipeline cleanly.

        The pipeline ends as after an ``EndFrame``, with no error; the same
        happens by itself when the server closes the connection with 1000.
        """
        ...

    def create_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run a coroutine until the transport stops (then it is cancelled)."""
        ...


@runtime_checkable
class SerializerHooks(Protocol):
    """The optional hooks of a serializer, each looked up by name.

    A serializer implements any subset of these besides ``FrameSerializer``'s
    ``serialize``/``deserialize``; :func:`attach_hook`,
    :func:`session_start_hook` and :func:`supports_native_dtmf` are how the
    transport finds them.

    Attributes:
        supports_native_dtmf: True if the protocol carries outbound DTMF
            (``OutputDTMFFrame`` is then serialized, not played as tones).
    """

    supports_native_dtmf: bool

    async def attach(self, io: ProtocolIO) -> None:
        """Called once when the pipeline starts, before any message is delivered.

        Args:
            io: Send, deliver and run tasks on the transport's behalf.
        """
        ...

    def session_start_messages(self) -> list[str | bytes] | Awaitable[list[str | bytes]]:
        """Messages to send first on every (re)connection (sync or async).

        Returns:
            The messages, sent in order before anything else.
        """
        ...

    async def serialize(self, frame: Frame) -> Payload:
        """Serialize a frame; a list is sent as that many messages, in order."""
        ...


def attach_hook(serializer: object) -> Callable[[ProtocolIO], Awaitable[None]] | None:
    """The serializer's ``attach(io)``, if it has one."""
    return getattr(serializer, "attach", None)


def session_start_hook(
    serializer: object,
) -> Callable[[], list[str | bytes] | Awaitable[list[str | bytes]]] | None:
    """The serializer's ``session_start_messages()``, if it has one."""
    return getattr(serializer, "session_start_messages", None)


def supports_native_dtmf(serializer: object) -> bool:
    """Whether the serializer sends outbound DTMF itself."""
    return bool(getattr(serializer, "supports_native_dtmf", False))


async def call_maybe_async(provider: Callable[[], Any]) -> Any:
    """Call a sync or async provider and return its result."""
    result = provider()
    return await result if inspect.isawaitable(result) else result


def iter_messages(payload: Payload) -> tuple[str | bytes, ...] | list[str | bytes]:
    """The messages of a serialized payload, in sending order (none for an empty one)."""
    if not payload:
        return ()
    return payload if isinstance(payload, list) else (payload,)
