#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The checked values of scenario files: numbers in range, text, WAV paths, keys (pure).

Every check raises a :class:`~pipecat_wsclient.scenario.consent.ScenarioError`
naming the file, the turn and the key (``where``), as
:mod:`~pipecat_wsclient.scenario.model` reports every mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipecat_wsclient.caller.limits import MAX_SECS
from pipecat_wsclient.scenario.consent import Consent, ScenarioError, check_inside, expand_env

MAX_TEXT_CHARS = 5000
"""Longest text a ``say`` turn speaks."""

MAX_NODES = 100_000
"""Most values (strings, numbers, list and mapping entries) a scenario may hold,
aliases counted each time they are used (a YAML alias bomb stops here)."""


def check_size(data: Any, where: str) -> None:
    """Refuse a document of more than :data:`MAX_NODES` values (aliases counted each use)."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ScenarioError(f"{where}: more than {MAX_NODES} values (YAML aliases included)")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def expand(data: Any, env: Mapping[str, str], where: str, consent: Consent) -> Any:
    """``data`` with ``${VAR}`` replaced in every string and key, as ``consent`` allows."""
    """:func:`expand_env`, naming the turn and the key of an unset or refused variable."""

    def keys(value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            return expand_env(value, env, where, consent)
        return {k: expand_env(v, env, f"{where}: {k}", consent) for k, v in value.items()}

    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        return keys(data, where)
    turns = [keys(item, f"{where}: turn {i}") for i, item in enumerate(data["turns"], start=1)]
    return {**keys({k: v for k, v in data.items() if k != "turns"}, where), "turns": turns}


def number(
    data: dict,
    key: str,
    where: str,
    kind: type,
    default: Any,
    *,
    low: float,
    high: float = MAX_SECS,
) -> Any:
    """``data[key]`` (or ``default``) as a finite number of ``kind`` in ``[low, high]``."""
    raw = data.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ScenarioError(f"{where}: {key} must be a number, not {raw!r}")
    try:
        finite = math.isfinite(raw)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise ScenarioError(f"{where}: {key} must be a finite number")
    if kind is int and raw != int(raw):
        raise ScenarioError(f"{where}: {key} must be a whole number, not {raw!r}")
    if raw < low:
        raise ScenarioError(f"{where}: {key} must be at least {low:g}, not {raw!r}")
    if raw > high:
        raise ScenarioError(f"{where}: {key} must be at most {high:g}, not {raw!r}")
    return kind(raw)


def text(value: Any, where: str) -> str:
    """A non-empty text of at most :data:`MAX_TEXT_CHARS` characters."""
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where}: the text to say must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise ScenarioError(f"{where}: longer than {MAX_TEXT_CHARS} characters")
    return value


def wav(value: Any, base: Path, where: str, consent: Consent) -> Path:
    """An existing WAV file's path, relative to ``base``, inside it unless ``consent`` allows."""
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}: a WAV file's path")
    path = Path(value)
    try:
        path = path.expanduser()
    except RuntimeError:  # ~user with no such user: the path as written
        pass
    path = path if path.is_absolute() else base / path
    check_inside(path, base, value, where, consent)
    try:
        found = path.is_file()
    except OSError:  # a name too long
        found = False
    if not found:
        raise ScenarioError(f"{where}: no such file: {path}")
    return path


def unknown(data: dict, allowed: set[str], where: str) -> None:
    """Refuse the first key of ``data`` not in ``allowed``, listing those allowed."""
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed))})"
        )


def kind(value: Any) -> str:
    """What ``value`` is, for a message: "nothing", "a list"..."""
    return "nothing" if value is None else f"a {type(value).__name__}"


def short(text: str, limit: int = 40) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
