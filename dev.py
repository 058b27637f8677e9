#!/usr/bin/env python3
"""Set up a virtual environment and run the demo, the tests or the linters.

Needs only Python >= 3.11 and pip::

    python3 dev.py demo     # set up .venv, run the demo against a local server
    python3 dev.py test     # set up .venv, run the test suite (everything)
    python3 dev.py test --fast   # the fast run: no slow, browser or speech-to-text tests
    python3 dev.py lint     # ruff and mypy
    python3 dev.py docs     # build the documentation site into site/ (warnings are errors)
    python3 dev.py docs serve    # serve it at http://127.0.0.1:8000 while you edit
    python3 dev.py test-pythons [3.12 ...]  # the fast run on the other Pythons

The first run creates ``.venv`` and installs the package with its extras,
pinned by ``constraints.txt``; later runs reuse it (re-installing when
``pyproject.toml`` or ``constraints.txt`` changed). Arguments after the
command go to pytest (``python3 dev.py test --fast tests/core -x``).

The fast run selects by the markers registered in ``pyproject.toml``
(``FAST_MARKERS``): every test but those marked ``slow``, ``browser``, ``stt`` or
``dist``, with the ``dev`` hypothesis profile (``tests/budget.py``: a tenth
of CI's generated examples) unless ``HYPOTHESIS_PROFILE`` says otherwise.

``test-pythons`` does the same set-up in ``.venv-3.12`` and ``.venv-3.13``
with those Pythons (found as ``python3.12`` on PATH, else in pyenv's or the
system's usual places; a missing one is an error), then runs the fast run in
each. ``dev.py test`` runs everything on this Python.
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
"""Pythons that ``test-pythons`` runs the fast run on (CI's main run is on 3.11)."""

FAST_MARKERS = "not slow and not browser and not stt and not dist"
"""The fast run's selection: the markers are registered (and described) in pyproject.toml."""

FAST_PROFILE = "dev"
"""The hypothesis profile of the fast run, unless ``HYPOTHESIS_PROFILE`` is set."""


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command in the project directory, echoing it; fail on a non-zero exit."""
    shown = " ".join(str(a) for a in args)
    extra = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    if extra:
        shown = " ".join(f"{k}={v}" for k, v in extra.items()) + " " + shown
    print("+", shown, flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, env=env)


def fast_run(py: Path, extra: list[str]) -> None:
    """The fast run with the venv's python: pytest ``-m FAST_MARKERS`` and the dev profile."""
    env = {"HYPOTHESIS_PROFILE": FAST_PROFILE, **os.environ}
    run(py, "-m", "pytest", "-p", "no:cacheprovider", "-m", FAST_MARKERS, *extra, env=env)


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
    """Set up ``.venv-X.Y`` for each Python and run the fast run in it; fail on any failure."""
    pythons = {version: find_python(version) for version in versions}  # all found, or stop now
    took = {}
    for version, python in pythons.items():
        start = time.monotonic()
        print(f"== Python {version} ({python})", flush=True)
        py = setup(ROOT / f".venv-{version}", python)
        fast_run(py, ["-q", *extra])
        took[version] = time.monotonic() - start
    for version, secs in took.items():
        print(f"Python {version}: fast run passed ({secs:.0f} s with setup)")


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
        if "--fast" in extra:
            fast_run(PY, [a for a in extra if a != "--fast"])
        else:
            run(PY, "-m", "pytest", *extra)
    elif command == "test-pythons":
        # Python versions (e.g. 3.12), then pytest options.
        versions = [a for a in extra if a[:1].isdigit()] or list(OTHER_PYTHONS)
        test_pythons(versions, [a for a in extra if not a[:1].isdigit()])
    elif command == "lint":
        setup()
        linted = ("src", "tests", "examples", "bench", "docs", "dev.py")
        run(PY, "-m", "ruff", "check", *linted)
        run(PY, "-m", "ruff", "format", "--check", *linted)
        run(PY, "-m", "mypy")
    elif command == "docs":
        setup()
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2
        if extra[:1] == ["serve"]:
            run(PY, "-m", "mkdocs", "serve", *extra[1:], env=env)
        else:
            run(PY, "-m", "mkdocs", "build", "--strict", *extra, env=env)
    else:
        print(__doc__)
        sys.exit(0 if command in ("help", "-h", "--help") else 2)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(e.returncode)
