#!/usr/bin/env python3
"""Set up a virtual environment and run the demo, the tests or the linters.

Needs only Python >= 3.11 and pip::

    python3 dev.py demo     # set up .venv, run the demo against a local server
    python3 dev.py test     # set up .venv, run the test suite
    python3 dev.py lint     # ruff and mypy
    python3 dev.py test-pythons [3.12 ...]  # the fast suite on the other Pythons

The first run creates ``.venv`` and installs the package with its extras,
pinned by ``constraints.txt``; later runs reuse it (re-installing when
``pyproject.toml`` or ``constraints.txt`` changed).

``test-pythons`` does the same in ``.venv-3.12`` and ``.venv-3.13`` with
those Pythons (found as ``python3.12`` on PATH, else in pyenv's or the
system's usual places; a missing one is an error), then runs the fast suite
(``FAST_TESTS``) in each. ``dev.py test`` runs everything on this Python.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN_DIR = "Scripts" if os.name == "nt" else "bin"
BIN = VENV / BIN_DIR
PY = BIN / "python"

OTHER_PYTHONS = ("3.12", "3.13")
"""Pythons that ``test-pythons`` runs the fast suite on (CI's main run is on 3.11)."""

FAST_TESTS = (
    # Pure modules: pacing, retry, ledger, outage buffer, errors, hooks, codecs, API.
    "tests/test_layering.py",  # imports run downwards; modules stay readable
    "tests/test_public_paths.py",
    "tests/core/test_connection_state.py",
    "tests/core/test_pacing.py",
    "tests/core/test_retry.py",
    "tests/core/test_ledger.py",
    "tests/core/test_outage.py",
    "tests/core/test_errors.py",
    "tests/core/test_hooks.py",
    "tests/core/test_throttle_stats.py",
    "tests/core/test_protobuf_audio.py",
    "tests/protocols/test_protocol_audio.py",
    "tests/serve/test_serve_audio.py",
    "tests/protocols/test_cli_protocols.py",
    "tests/test_packaging.py",
    "tests/core/test_api.py",
    "tests/core/test_upstream.py",  # fingerprints (the same on every Python) and the fallbacks
    # Scenario files, transcript matching, timelines, checks and reports (pure).
    "tests/scenario/test_scenario_model.py",
    "tests/scenario/test_scenario_matching.py",
    "tests/audio/test_scenario_timeline.py",
    "tests/scenario/test_scenario_checks.py",
    "tests/scenario/test_scenario_report.py",
    "tests/audio/test_phone_turns.py",  # the one turn engine, live and final (pure)
    "tests/audio/test_resample.py",
    "tests/caller/test_builder.py",
    # The protocols, against their fake peers, and their generated inputs.
    "tests/protocols/test_asterisk_flow.py",
    "tests/protocols/test_carriers.py",
    "tests/protocols/test_asterisk.py",
    "tests/protocols/test_protocols_fuzz.py",
    # Real pipelines against real local servers: connecting (TLS too), audio
    # out and in, the media sender, reconnecting, how calls end.
    "tests/core/test_connection.py",
    "tests/core/test_connect_failures.py",
    "tests/core/test_tls.py",
    "tests/core/test_outbound.py",
    "tests/core/test_inbound.py",
    "tests/core/test_media_sender.py",
    "tests/core/test_reconnect.py",
    "tests/core/test_remote_close.py",
    "tests/core/test_call_end.py",
    "tests/core/test_cancel_bound.py",
)
"""The fast suite: about two minutes per Python on two cores (``dev.py test`` runs all)."""


def run(*args: str | Path) -> None:
    """Run a command in the project directory, echoing it; fail on a non-zero exit."""
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def setup(venv: Path = VENV, python: str | Path = sys.executable) -> Path:
    """Create a venv and install the package with its dev extras, unless already done.

    Args:
        venv: Where.
        python: The interpreter it is made from.

    Returns:
        The venv's python.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself runs on older Pythons to say this
        sys.exit("pipecat-wsclient needs Python >= 3.11")
    py = venv / BIN_DIR / "python"
    if not py.exists():
        run(python, "-m", "venv", venv)
    stamp = venv / ".installed"
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return py
    run(py, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(py, "-m", "pip", "install", "-q", "-c", "constraints.txt", "-e", ".[dev]")
    stamp.write_text(wanted)
    return py


def find_python(version: str) -> str:
    """The path of a working Python ``version`` (e.g. "3.12"); exit naming what was tried.

    ``pythonX.Y`` on PATH may be a pyenv shim that fails unless pyenv is told
    which version to use, so each candidate is run and must say it is that
    version.
    """
    name = f"python{version}"
    candidates = [shutil.which(name)]
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    for root in dict.fromkeys(r for r in roots if r):
        candidates += sorted(glob.glob(f"{root}/versions/{version}*/bin/{name}"), reverse=True)
    candidates += [f"/usr/local/bin/{name}", f"/usr/bin/{name}"]
    tried = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        tried.append(candidate)
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    sys.exit(
        f"Python {version} not found: no working {name} on PATH, in pyenv's versions "
        f"or in /usr/local/bin, /usr/bin (tried: {', '.join(tried)}). dev.py test-pythons "
        f"needs it (CI runs it): install it, e.g. pyenv install {version}."
    )


def test_pythons(versions: list[str], extra: list[str]) -> None:
    """Set up ``.venv-X.Y`` for each Python and run the fast suite in it; fail on any failure."""
    pythons = {version: find_python(version) for version in versions}  # all found, or stop now
    took = {}
    for version, python in pythons.items():
        start = time.monotonic()
        print(f"== Python {version} ({python})", flush=True)
        py = setup(ROOT / f".venv-{version}", python)
        run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAST_TESTS, *extra)
        took[version] = time.monotonic() - start
    for version, secs in took.items():
        print(f"Python {version}: fast suite passed ({secs:.0f} s with setup)")


def main() -> None:
    """Dispatch the command line."""
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    extra = sys.argv[2:]
    if command == "demo":
        setup()
        run(BIN / "pipecat-wsclient", "demo", *extra)
    elif command == "test":
        setup()
        # Exit code 5 (no tests collected) fails too: check=True.
        run(PY, "-m", "pytest", *extra)
    elif command == "test-pythons":
        # Python versions (e.g. 3.12), then pytest options.
        versions = [a for a in extra if a[:1].isdigit()] or list(OTHER_PYTHONS)
        test_pythons(versions, [a for a in extra if not a[:1].isdigit()])
    elif command == "lint":
        setup()
        run(PY, "-m", "ruff", "check", "src", "tests", "examples", "bench", "dev.py")
        run(PY, "-m", "ruff", "format", "--check", "src", "tests", "examples", "bench", "dev.py")
        run(PY, "-m", "mypy")
    else:
        print(__doc__)
        sys.exit(0 if command in ("help", "-h", "--help") else 2)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(e.returncode)
