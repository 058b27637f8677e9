"""What the package declares matches what the code needs (defect 10 of the reliability issue)."""

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requires_python_excludes_versions_without_asyncio_timeout():
    # The code uses asyncio.timeout (3.11+) throughout.
    spec = SpecifierSet(PROJECT["project"]["requires-python"])
    assert "3.10.14" not in spec
    assert "3.11.0" in spec
    assert f"{sys.version_info.major}.{sys.version_info.minor}.0" in spec


def test_type_checker_targets_the_oldest_supported_python():
    assert PROJECT["tool"]["mypy"]["python_version"] == "3.11"


def test_declared_pythons_are_the_tested_ones():
    """The classifiers name 3.11 (the whole suite) and the Pythons dev.py test-pythons runs."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    prefix = "Programming Language :: Python :: 3."
    declared = {
        c.removeprefix("Programming Language :: Python :: ")
        for c in PROJECT["project"]["classifiers"]
        if c.startswith(prefix)
    }
    assert declared == {"3.11", *dev.OTHER_PYTHONS}
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in declared
    requires = SpecifierSet(PROJECT["project"]["requires-python"])
    assert all(f"{version}.0" in requires for version in declared)


def test_the_locust_extra_does_not_pull_the_command_line():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0] for dep in extras["locust"]}
    assert {"numpy", "soxr", "locust"} <= names
    assert not names & {"typer", "rich", "matplotlib", "pipecat-wsclient"}


def test_the_locust_users_import_nothing_of_the_command_line():
    code = (
        "import sys; import pipecat_wsclient.locust.user, pipecat_wsclient.locust.loop; "
        "print(sorted(m for m in ('typer', 'rich', 'matplotlib', 'pipecat_wsclient.cli') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
