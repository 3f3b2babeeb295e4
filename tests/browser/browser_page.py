"""Playwright over Debian's Chromium for the browser tests: the tab, the server errors it saw, its screenshots.

Chromium comes from Debian's package (devtools.chromium installs it when missing; Playwright's own browser download
cannot reach its host from here), driven through `executable_path`. Every response of the Airflow server a tab talks
to is watched: a 5xx fails the test. Screenshots go to build/ui/ (git-ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from testenv import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response

SCREENSHOTS = ROOT / "build" / "ui"
# How long expect() and actions wait for an element: the UI answers in well under a second here, but a busy two-core
# machine running a release beside the browser can stall a render for seconds.
ELEMENT_TIMEOUT_MS = 30_000
# Each phase's report of a test (setup, call, teardown), kept on its item by conftest's pytest_runtest_makereport.
OUTCOMES = pytest.StashKey[dict[str, pytest.TestReport]]()


class ServerErrors:
    """The 5xx answers (and failed requests) a page got from `origin`."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.seen: list[str] = []

    def response(self, response: Response) -> None:
        if response.url.startswith(self.origin) and response.status >= 500:
            self.seen.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def failed(self, request: Request) -> None:
        # ERR_ABORTED: the page navigated away (or the UI cancelled a poll) before the answer came; not the server's fault.
        if request.url.startswith(self.origin) and request.failure and "ERR_ABORTED" not in request.failure:
            self.seen.append(f"request failed: {request.method} {request.url}: {request.failure}")


def new_page(browser: Browser, origin: str) -> tuple[Page, ServerErrors]:
    context = browser.new_context(base_url=origin, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(ELEMENT_TIMEOUT_MS)
    expect.set_options(timeout=ELEMENT_TIMEOUT_MS)
    page = context.new_page()
    errors = ServerErrors(origin)
    page.on("response", errors.response)
    page.on("requestfailed", errors.failed)
    return page, errors


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """The whole page (or what the window shows, for the README) as build/ui/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # animations="disabled": a drawer still sliding in, a page still fading in, is drawn as it ends up.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled")


def failed(item: pytest.Item) -> bool:
    """Did the test itself (not its setup) fail?"""
    call = item.stash.get(OUTCOMES, {}).get("call")
    return call is not None and call.failed
