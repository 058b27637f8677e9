#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""JSON received from the far end, parsed with a bound on its nesting (pure, no I/O).

Python's parser raises ``RecursionError`` for JSON nested more than about
1000 levels deep; JSON a little less deep parses, but then cannot be printed
further down the stack: Pipecat formats every frame it pushes (``str(frame)``
for a trace line), so a transport message nested 980 levels deep raised
``RecursionError`` there, was lost and became an ``ErrorFrame``. No voice
protocol nests that deep; :func:`loads` refuses anything deeper than
:data:`MAX_DEPTH` with a ``ValueError``, as it does malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (``[[1]]`` is 2)."""


def loads(data: str | bytes) -> Any:
    """Parse JSON from the far end.

    Args:
        data: The JSON text (bytes are decoded as ``json.loads`` does).

    Returns:
        The value.

    Raises:
        ValueError: If ``data`` is not JSON (``json.JSONDecodeError``,
            ``UnicodeDecodeError``) or nests arrays and objects deeper than
            :data:`MAX_DEPTH`.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if _deeper_than(value, MAX_DEPTH):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
