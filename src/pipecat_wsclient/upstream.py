#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Everything this package takes from Pipecat beyond its public API, in one place.

Three parts of the package do some of Pipecat's own work their own way, and
so depend on Pipecat code that any Pipecat release may change: private
methods and attributes, and the bodies of methods they copy.

- ``sender``: the output's media sender
  (:class:`~pipecat_wsclient.sender.LeanMediaSender`, a subclass of
  ``BaseOutputTransport.MediaSender``) and the output's
  ``set_transport_ready``, which creates it.
- ``input``: the input's ``push_audio_frame``, which pushes received audio at
  once instead of through the base class's audio queue and task.
- ``protobuf``: :mod:`~pipecat_wsclient.protobuf_audio`, which encodes and
  decodes audio as ``ProtobufFrameSerializer`` does, without its reflection.

Each part lists the Pipecat methods it **copies** (re-implements or
overrides: a change there leaves our copy stale) and those it **calls** or
relies on (a change there reaches us, but may break what we assume), each
with a fingerprint of its code in the Pipecat release the package was
checked against (:data:`PIPECAT_VERSION`), and the private attributes it
reads.

- In CI, ``tests/test_upstream.py`` recomputes every fingerprint against the
  installed Pipecat and fails naming each method whose code changed, and
  checks the attributes on real objects.
- At run time, :func:`fits` checks a part once per process: if a method it
  copies changed (or its source cannot be read), or a method it calls is
  gone, the part is not used and Pipecat's own code runs instead (see
  :attr:`Part.fallback`), with one warning. A newer Pipecat then behaves as
  Pipecat does, without what the part adds, rather than running a stale copy
  of older Pipecat code. A change in a method a part only calls does not
  switch it off (the call reaches the new code); CI flags it for review.

A fingerprint is the start of the sha256 of the function's syntax tree
(``inspect.getsource``, dedented, parsed), docstrings left out: comments,
formatting, quoting and docstrings do not count, and the same code has the
same fingerprint on every Python version.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

PIPECAT_VERSION = "1.14.0"
"""The Pipecat release whose code the fingerprints below were taken from."""

FINGERPRINT_CHARS = 12

# Where the owners named in the paths below live.
_MODULES = {
    "BaseOutputTransport": "pipecat.transports.base_output",
    "BaseInputTransport": "pipecat.transports.base_input",
    "BaseObject": "pipecat.utils.base_object",
    "FrameQueue": "pipecat.utils.frame_queue",
    "ProtobufFrameSerializer": "pipecat.serializers.protobuf",
}


@dataclass(frozen=True)
class Method:
    """A Pipecat method a part depends on.

    Attributes:
        path: Class path and name, e.g. ``"BaseOutputTransport.MediaSender.stop"``.
        fingerprint: Of its code in :data:`PIPECAT_VERSION`.
        copied: Whether we re-implement or override it (a change makes our
            copy stale: the part is switched off at run time); else we call
            it or rely on what it does (CI only).
        why: How we depend on it.
    """

    path: str
    fingerprint: str
    copied: bool
    why: str


@dataclass(frozen=True)
class Part:
    """A part of the package that depends on Pipecat's internals.

    Attributes:
        name: The part's name, as :func:`fits` takes it.
        methods: The methods it copies or calls.
        attributes: Private attributes it reads or writes, as
            ``"Owner._name"``; checked on real objects in CI.
        fallback: What runs instead when the part does not fit.
    """

    name: str
    methods: tuple[Method, ...]
    attributes: tuple[str, ...]
    fallback: str


_SENDER = "BaseOutputTransport.MediaSender"

PARTS: dict[str, Part] = {
    "sender": Part(
        name="sender",
        methods=(
            Method(
                f"{_SENDER}._audio_task_handler",
                "660e6603b99b",
                True,
                "LeanMediaSender re-implements the audio loop (written audio pushed gathered)",
            ),
            Method(
                f"{_SENDER}._next_frame",
                "d14a15d12f38",
                True,
                "LeanMediaSender re-implements the loop without a mixer (no task per frame)",
            ),
            Method(
                f"{_SENDER}._internal_write_audio_frame",
                "be5c461c219a",
                True,
                "LeanMediaSender re-implements the bounded write (asyncio.timeout, bounds_sends)",
            ),
            Method(
                f"{_SENDER}._enqueue_audio_chunk",
                "d946a62c2cdc",
                True,
                "LeanMediaSender builds tail chunks as it does (and marks them)",
            ),
            Method(
                f"{_SENDER}.stop",
                "bebe2253da20",
                True,
                "LeanMediaSender queues the tail first; relies on stop queueing EndFrame "
                "on _audio_queue and awaiting the audio task",
            ),
            Method(
                "BaseOutputTransport.set_transport_ready",
                "96e257bde63d",
                True,
                "the output re-implements it to create LeanMediaSender",
            ),
            Method(
                f"{_SENDER}.handle_audio_frame",
                "d895e3b1142f",
                False,
                "its chunking leaves less than a chunk in _audio_runs "
                "(LeanMediaSender sends it when due)",
            ),
            Method(
                f"{_SENDER}._enqueue_flushed_audio_buffer",
                "22aec21a8f2e",
                False,
                "called to flush the tail; must queue through _enqueue_audio_chunk",
            ),
            Method(
                f"{_SENDER}.handle_sync_frame",
                "74dec83cbfe5",
                False,
                "LeanMediaSender flushes the partial chunk before a DTMF tone, then calls it",
            ),
            Method(f"{_SENDER}._send_silence", "2a88e733a4de", False, "called for the end silence"),
            Method(f"{_SENDER}._handle_frame", "6c60b2cff4a7", False, "called per frame"),
            Method(f"{_SENDER}._filter_audio", "b1bb6b56634b", False, "called per frame"),
            Method(f"{_SENDER}._apply_volume", "97a3259cae89", False, "called per frame"),
            Method(
                f"{_SENDER}._bot_stopped_speaking",
                "b33b280437a4",
                False,
                "called when no audio came for BOT_VAD_STOP_FALLBACK_SECS",
            ),
            Method(
                f"{_SENDER}._buffered_audio_bytes",
                "d64bd3686f34",
                False,
                "read: audio waiting to fill a chunk",
            ),
            Method(
                f"{_SENDER}._create_audio_task",
                "ff2b43e7fe08",
                False,
                "creates _audio_queue, a FrameQueue",
            ),
            Method(
                f"{_SENDER}.handle_interruptions",
                "9a04ac8e2ecf",
                False,
                "InterruptionCounter counts what it discards (interruptible_audio_bytes), "
                "with either sender",
            ),
            Method(
                "FrameQueue.reset",
                "5c74b62c7e24",
                False,
                "what handle_interruptions discards from _audio_queue",
            ),
            Method(
                "BaseOutputTransport.write_dtmf",
                "1010163c2df7",
                False,
                "calls the hooks the output overrides: _supports_native_dtmf, _write_dtmf_native",
            ),
        ),
        attributes=(
            f"{_SENDER}._transport",
            f"{_SENDER}._destination",
            f"{_SENDER}._sample_rate",
            f"{_SENDER}._params",
            f"{_SENDER}._audio_queue",
            f"{_SENDER}._audio_runs",
            f"{_SENDER}._audio_buffer_cls",
            f"{_SENDER}._mixer",
            "FrameQueue._queue",
            "BaseOutputTransport._media_senders",
            "BaseOutputTransport._params",
            "BaseOutputTransport._supports_native_dtmf",
            "BaseOutputTransport._write_dtmf_native",
            "pipecat.transports.base_output.BOT_VAD_STOP_FALLBACK_SECS",
        ),
        fallback=(
            "the output uses Pipecat's own set_transport_ready and media sender "
            "(interruptions still counted), without the cheaper per-chunk path, the "
            "gathering of audio pushed downstream (audio_out_downstream_secs) and the "
            "last partial chunk of an utterance sent when due"
        ),
    ),
    "input": Part(
        name="input",
        methods=(
            Method(
                "BaseInputTransport.push_audio_frame",
                "e689a0dcc558",
                True,
                "the input overrides it to push audio at once (without an audio_in_filter)",
            ),
            Method(
                "BaseInputTransport._audio_task_handler",
                "12adf8053ece",
                True,
                "what the input does instead of it: push the audio if passthrough, "
                "skip empty frames",
            ),
        ),
        attributes=("BaseInputTransport._params", "BaseInputTransport._paused"),
        fallback=(
            "received audio goes through Pipecat's audio queue and task "
            "(one more task switch per chunk)"
        ),
    ),
    "protobuf": Part(
        name="protobuf",
        methods=(
            Method(
                "ProtobufFrameSerializer.serialize",
                "4aa68ac67349",
                True,
                "protobuf_audio.encode_audio writes the same audio message",
            ),
            Method(
                "ProtobufFrameSerializer.deserialize",
                "d6fdcd9256c0",
                True,
                "protobuf_audio.decode_audio reads audio messages the same way",
            ),
        ),
        attributes=(),
        fallback="audio is encoded and decoded by ProtobufFrameSerializer itself (slower)",
    ),
}
"""The parts, by name."""

OTHER_ATTRIBUTES: tuple[str, ...] = (
    "BaseObject._register_event_handler",
    "BaseObject._call_event_handler",
)
"""Protected names used outside the parts (by the transport, as every Pipecat transport does)."""


def fingerprint_source(source: str) -> str:
    """The fingerprint of one function's source code.

    Args:
        source: A function definition (decorators included), indented or not.

    Returns:
        :data:`FINGERPRINT_CHARS` hex digits of the sha256 of its syntax tree,
        docstrings (its own and those of functions and classes inside it) left out.
    """
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()[:FINGERPRINT_CHARS]


def _canonical(value: Any) -> str:
    """A syntax tree as text, the same on every Python version for the same code.

    Not ``ast.unparse``: it quotes f-strings differently from Python 3.12 on.
    Fields that are None or empty are left out (versions add new ones, e.g.
    ``type_params``); positions are not fields, so they do not count.
    """
    if isinstance(value, ast.AST):
        fields = ",".join(
            f"{name}={_canonical(field)}"
            for name, field in ast.iter_fields(value)
            if field is not None and field != []
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return repr(value)


def fingerprint(function: Callable[..., Any] | property) -> str:
    """The fingerprint of a function's code (a property's getter for a property).

    Args:
        function: The function, method or property.

    Returns:
        See :func:`fingerprint_source`.

    Raises:
        OSError: The source code is not available.
        TypeError: Not something with source code.
    """
    if isinstance(function, property):
        if function.fget is None:
            raise TypeError("a property without a getter")
        function = function.fget
    return fingerprint_source(inspect.getsource(function))


def resolve(path: str) -> Any:
    """The object a path in :data:`PARTS` names, looked up without running descriptors.

    Args:
        path: ``"Owner.Inner.name"`` with an owner of :data:`_MODULES`, or a
            dotted ``module.NAME``.

    Returns:
        The function, property or class attribute (as stored on the class).

    Raises:
        AttributeError: It does not exist (any more).
        ImportError: The module does not exist (any more).
    """
    head, *rest = path.split(".")
    if head not in _MODULES:
        module_name, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module_name), name)
    obj = getattr(importlib.import_module(_MODULES[head]), head)
    for name in rest:
        obj = inspect.getattr_static(obj, name)
    return obj


@dataclass(frozen=True)
class Change:
    """A method whose code is not what a part was written against."""

    method: Method
    now: str | None
    """Its fingerprint in the installed Pipecat; None if it is gone or its source unreadable."""
    problem: str
    """What is wrong, e.g. ``"code changed"``."""

    def __str__(self) -> str:
        if self.now is None:
            return f"{self.method.path}: {self.problem}"
        return f"{self.method.path}: {self.problem} ({self.method.fingerprint} -> {self.now})"


def changes(part: Part) -> list[Change]:
    """The part's methods whose code in the installed Pipecat differs from the recorded code.

    Args:
        part: One of :data:`PARTS`.

    Returns:
        One entry per changed, missing or unreadable method (empty: all as recorded).
    """
    found = []
    for method in part.methods:
        try:
            now = fingerprint(resolve(method.path))
        except (AttributeError, ImportError):
            found.append(Change(method, None, "missing"))
            continue
        except (OSError, TypeError) as e:
            found.append(Change(method, None, f"source not readable ({e})"))
            continue
        if now != method.fingerprint:
            found.append(Change(method, now, "code changed"))
    return found


def run_time_problems(part: Part) -> list[Change]:
    """What switches the part off at run time: a copied method changed, or a called one gone."""
    return [c for c in changes(part) if c.method.copied or c.problem == "missing"]


def pipecat_version() -> str:
    """The installed Pipecat's version ("unknown" if its metadata cannot be read)."""
    try:
        return importlib.metadata.version("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(importlib.import_module("pipecat"), "__version__", "unknown"))


_verdicts: dict[str, bool] = {}


def fits(name: str) -> bool:
    """Whether the part ``name`` may be used with the installed Pipecat.

    Checked once per process (the first time costs a few milliseconds: it
    reads Pipecat's source); when it does not fit, one warning says what
    changed and what runs instead.

    Args:
        name: A key of :data:`PARTS`.

    Returns:
        False when a method the part copies changed or cannot be read, or a
        method it calls is gone.
    """
    verdict = _verdicts.get(name)
    if verdict is None:
        part = PARTS[name]
        problems = run_time_problems(part)
        verdict = not problems
        _verdicts[name] = verdict
        if problems:
            from pipecat_wsclient.version import __version__

            logger.warning(
                f"pipecat-wsclient {__version__} was checked against Pipecat {PIPECAT_VERSION}; "
                f"in the installed Pipecat {pipecat_version()}, "
                + "; ".join(str(p) for p in problems)
                + f". So {part.fallback}. To get them back, install a pipecat-wsclient "
                f"checked against this Pipecat, or pipecat-ai=={PIPECAT_VERSION}."
            )
    return verdict


def reset_verdicts() -> None:
    """Forget the verdicts of :func:`fits` (for tests: check again, warn again)."""
    _verdicts.clear()
