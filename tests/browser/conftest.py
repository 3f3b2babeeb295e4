"""The browser tests' Chromium: Debian's package (installed by devtools.chromium when missing), launched once a module.

Each test's outcome is kept on its item, so that a failed test's tab can be saved as build/ui/FAILED-<test>.png.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from browser_page import OUTCOMES

from devtools import chromium

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from playwright.sync_api import Browser


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(OUTCOMES, {})[report.when] = report
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module, no longer: while Playwright's sync API is open, its event loop counts as running in
    this thread, so a later test's asyncio.run() (dag.test() running a trigger inline) would fail or hang."""
    from playwright.sync_api import sync_playwright

    executable = chromium.executable()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to start its sandbox as root, which the CI machines are.
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
