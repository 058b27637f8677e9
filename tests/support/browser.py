"""A real Chromium for the browser phone's tests: headless, with a WAV file as its microphone.

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them); Selenium drives it. Where either is missing,
:func:`chromium_or_skip` skips the test with the reason (pytest prints it:
``-rs`` is in the project's pytest options), never silently; with
``PHONE_BROWSER_REQUIRED=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def _which(names: tuple[str, ...], env: str) -> str | None:
    if os.environ.get(env):  # a path given: that one or none
        return os.environ[env] if os.access(os.environ[env], os.X_OK) else None
    return next((path for name in names if (path := shutil.which(name))), None)


def _unavailable(reason: str) -> None:
    if os.environ.get("PHONE_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{reason} (PHONE_BROWSER_REQUIRED=1)")
    pytest.skip(reason)


def chromium_or_skip() -> tuple[str, str]:
    """The Chromium and ChromeDriver executables, or skip the test saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("browser tests need selenium (pip install -e '.[dev]')")
    browser = _which(CHROMIUM_NAMES, "CHROMIUM")
    driver = _which(DRIVER_NAMES, "CHROMEDRIVER")
    if browser is None or driver is None:
        missing = " and ".join(
            name
            for name, path in (("chromium", browser), ("chromium-driver", driver))
            if path is None
        )
        _unavailable(f"no Chromium here: install {missing} (apt-get install {missing})")
    assert browser is not None and driver is not None
    return browser, driver


def start_chromium(microphone: Path | None = None, *, width: int = 900, height: int = 1500):
    """A headless Chromium whose microphone plays ``microphone`` (a WAV file) once.

    Returns:
        A Selenium WebDriver; ``quit()`` it.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="phone-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ):
        options.add_argument(flag)
    if microphone is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={microphone}%noloop")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))
