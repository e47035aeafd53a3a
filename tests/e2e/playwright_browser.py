"""Launching Debian's Chromium under Playwright for the browser tests.

Playwright's own browser download is not used (machines here reach no browser host): the
wheel brings the driver, `scripts/install-system-deps.sh` brings `/usr/bin/chromium`.
A browser that cannot start fails the tests with the reason: CI must run them, not skip them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "run scripts/install-system-deps.sh (Debian's chromium) and "
    ".venv/bin/pip install playwright==1.65.2, or set CHROMIUM_PATH to a Chromium binary"
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block; pytest.fail when it cannot start."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is missing ({exc}): {INSTALL_HINT}", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium executable at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        except Error as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
