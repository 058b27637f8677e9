#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a scenario file may take from this machine: the user's consent, not the file's (pure).

Issue 25, item 5. A scenario file names the host it calls, the headers it
sends and the audio it plays. Sent a file, one would run it to try a bot;
with ``${AWS_SECRET_ACCESS_KEY}`` in a header and ``play:
../../.ssh/key.wav`` it would carry the secret and the file to its host,
and pass. So reading the environment and playing a file outside the
scenario's folder take the user's consent (``test --allow-env NAME``,
``--allow-outside-files``; ``load --scenario`` too): without it, one line
naming the variable or the file and the option, exit 2, no call made.

``${NAME:-default}`` of a variable that is not set takes its default
without consent: nothing of the machine's goes out. A program that names
its own scenario file (Locust's ``VoiceCallUser.scenario``, a test) trusts
it: :data:`TRUSTED` is the default of
:func:`~pipecat_wsclient.scenario.model.load_scenario`.

Example::

    consent = Consent(env=frozenset({"BOT_TOKEN"}), outside_files=False)
    scenario = load_scenario(Path("sent.yaml"), consent=consent)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecat_wsclient.caller.hygiene import printable

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with the place and the reason."""


@dataclass(frozen=True)
class Consent:
    """What the user allows a scenario file to take from this machine.

    Parameters:
        env: The environment variables ``${NAME}`` may read; None: any.
        outside_files: Whether ``play`` may name a file outside the file's folder.
        factories: Whether a ``factory`` (``simulator``, ``judge.eval``) may
            name Python code to import and run to build an LLM.
    """

    env: frozenset[str] | None = None
    outside_files: bool = True
    factories: bool = True


TRUSTED = Consent()
"""Any variable, any file: a scenario the program itself names."""

UNTRUSTED = Consent(env=frozenset(), outside_files=False, factories=False)
"""No variable, no outside file, no factory: a file as the command line takes it by default."""


def check_factories(configs: Mapping[str, Any], where: str, consent: Consent) -> None:
    """Refuse a ``factory`` in a service block unless ``consent`` allows running code.

    Args:
        configs: The service blocks by name (``simulator``, ``judge.eval``),
            each a mapping or None; nested blocks (an ``explainer``) are searched too.
        where: The file, for messages.
        consent: Whether factories may run.

    Raises:
        ScenarioError: Naming the block and the code, and ``--allow-factories``.
    """
    if consent.factories:
        return
    stack = [(name, block) for name, block in configs.items()]
    while stack:
        name, block = stack.pop()
        if not isinstance(block, Mapping):
            continue
        if block.get("factory"):
            raise ScenarioError(
                f"{where}: {name}.factory names Python code to run ({block['factory']!s:.80}): "
                "pass --allow-factories to let this file run it"
            )
        stack += [(f"{name}.{key}", value) for key, value in block.items()]


def expand_env(value: Any, env: Mapping[str, str], where: str, consent: Consent = TRUSTED) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value``.

    Args:
        value: A string, or lists and mappings of them (other values are kept).
        env: The variables (the process environment, usually).
        where: The file, turn and key, for messages.
        consent: Which variables may be read.

    Raises:
        ScenarioError: If a variable is set but not allowed (naming it and
            ``--allow-env``), or is not set and has no default.
    """
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            allowed = consent.env is None or name in consent.env
            if name in env and allowed:
                return env[name]
            if name in env:
                raise ScenarioError(
                    f"{where}: ${{{name}}} would send your environment's {name} to the "
                    f"scenario's host: allow it with --allow-env {name}"
                )
            if default is not None:
                return default
            raise ScenarioError(f"{where}: ${{{name}}} is not set in the environment")

        return _ENV.sub(sub, value)
    if isinstance(value, list):
        return [expand_env(v, env, where, consent) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env, where, consent) for k, v in value.items()}
    return value


def check_inside(path: Path, base: Path, written: str, where: str, consent: Consent) -> None:
    """Fail if ``path`` (a ``play`` file) is outside ``base`` and that is not allowed.

    Links are followed: a link in the folder to a file outside it is outside.

    Args:
        path: The file, resolved against the scenario's folder.
        base: The scenario's folder.
        written: The path as the file writes it, for the message.
        where: The file, turn and key, for the message.
        consent: Whether files outside are allowed.

    Raises:
        ScenarioError: Naming the path, the folder and ``--allow-outside-files``.
    """
    if consent.outside_files:
        return
    try:
        folder = base.resolve()
        inside = path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):  # a loop of links, a name too long
        folder, inside = base, False
    if not inside:
        raise ScenarioError(
            f"{where}: {printable(written)} is outside the scenario's folder "
            f"({printable(folder)}): allow it with --allow-outside-files"
        )
