"""A griffe extension: the bits of reST our docstrings use, as Markdown for mkdocstrings.

The docstrings are Google style, read by mkdocstrings as Markdown, but they
borrow two things from reST (Sphinx's habits, Pipecat's too):

- cross-reference roles, ``:class:`~pipecat_wsclient.errors.ConnectionFailure```,
  shown as inline code (``ConnectionFailure``: the last part with ``~``, the
  target as written otherwise);
- literal blocks introduced by ``::`` at the end of a line, turned into fenced
  code blocks (Python when the block parses as Python), the ``::`` into ``:``.

Nothing in the source changes: this runs on the docstrings griffe has read
(``mkdocs.yml``: the python handler's ``extensions``).
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    if titled := re.fullmatch(r"(.+?)\s*<[^>]+>", target):  # :class:`title <target>`
        return f"`{titled.group(1)}`"
    target = target.lstrip(".")
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_python(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def literal_blocks(text: str) -> str:
    """Turn ``::`` literal blocks into fenced code blocks, at the introducing line's indent."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::") or stripped.lstrip().startswith(".."):
            out.append(line)
            i += 1
            continue
        margin = _indent(line)
        head = stripped[:-2].rstrip()
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_end = j
        while block_end < len(lines) and (
            not lines[block_end].strip() or _indent(lines[block_end]) > margin
        ):
            block_end += 1
        while block_end > j and not lines[block_end - 1].strip():
            block_end -= 1
        if block_end == j:  # no indented block follows: not a literal block
            out.append(line)
            i += 1
            continue
        code = textwrap.dedent("\n".join(lines[j:block_end]))
        pad = " " * margin
        if head.strip():
            out += [head + ":", ""]
        out.append(pad + ("```python" if _is_python(code) else "```text"))
        out += [(pad + c) if c else "" for c in code.split("\n")]
        out += [pad + "```", ""]
        i = block_end
    return "\n".join(out)


def to_markdown(text: str) -> str:
    """A docstring's reST roles and literal blocks in Markdown."""
    return literal_blocks(ROLE.sub(_role, text))


class RestToMarkdown(griffe.Extension):
    """Rewrite each docstring as it is loaded (see the module's docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
