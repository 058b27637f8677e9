"""The package as a user gets it (issue 27): an sdist and a wheel, accepted, installed clean.

``python -m build`` makes both (in isolation: hatchling comes from the
package index, as on any machine); ``twine check --strict`` accepts their
metadata and the README as the package index will render it; the wheel,
installed with its ``cli`` extra in a new virtual environment (pinned by
``constraints.txt``; nothing of this checkout on its path), runs
``pipecat-wsclient demo`` from there.

Marked ``slow`` and ``dist`` (a few minutes: most of it pip installing
Pipecat into the new environment); ``-m dist`` runs it alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.dist, pytest.mark.timeout(1200)]


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command with this environment less anything pointing at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def test_the_wheel_installs_clean_and_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    (sdist,) = dist.glob("pipecat_wsclient-*.tar.gz")
    (wheel,) = dist.glob("pipecat_wsclient-*-py3-none-any.whl")
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, cwd=tmp_path)

    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = whl.read(metadata).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "pipecat_wsclient/caller/data/question.wav" in names  # the demo's clip
    assert "pipecat_wsclient/phone/static/index.html" in names
    assert "License-Expression: BSD-2-Clause" in meta
    for label in ("Homepage", "Documentation", "Repository", "Issues", "Changelog"):
        assert f"Project-URL: {label}, https://" in meta, label
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "mkdocs.yml", "constraints.txt"} <= members
    assert not {m for m in members if m.startswith((".venv", ".hypothesis", "site/"))}

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    constraints = ROOT / "constraints.txt"
    run(py, "-m", "pip", "install", "-q", "-c", constraints, f"{wheel}[cli]", cwd=tmp_path)
    where = run(py, "-c", "import pipecat_wsclient; print(pipecat_wsclient.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    demo = run(
        venv / "bin" / "pipecat-wsclient", "demo", "--out-dir", "out", "--json", cwd=tmp_path
    )
    report = json.loads(demo.stdout)
    assert report["exit_code"] == 0 and report["heard_secs"] > 0, report
    assert (tmp_path / "out" / "demo-call.wav").stat().st_size > 0
    assert (tmp_path / "out" / "demo-call.png").stat().st_size > 0
