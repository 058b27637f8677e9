"""What the package declares matches what the code needs (defect 10 of the reliability issue)."""

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
