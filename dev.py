#!/usr/bin/env python3
"""Set up a virtual environment and run the demo, the tests or the linters.

Needs only Python >= 3.11 and pip::

    python3 dev.py demo     # set up .venv, run the demo against a local server
    python3 dev.py test     # set up .venv, run the test suite
    python3 dev.py lint     # ruff and mypy

The first run creates ``.venv`` and installs the package with its extras,
pinned by ``constraints.txt``; later runs reuse it (re-installing when
``pyproject.toml`` or ``constraints.txt`` changed).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def run(*args: str | Path) -> None:
    """Run a command in the project directory, echoing it; fail on a non-zero exit."""
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def setup() -> None:
    """Create .venv and install the package with its dev extras, unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself runs on older Pythons to say this
        sys.exit("pipecat-wsclient needs Python >= 3.11")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "-q", "-c", "constraints.txt", "-e", ".[dev]")
    STAMP.write_text(wanted)


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
