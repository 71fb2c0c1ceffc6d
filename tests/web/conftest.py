"""Chromium for the browser tests: one browser, a fresh context per page.

Playwright drives Debian's chromium at /usr/bin/chromium; it never downloads
a browser. Without chromium the tests are skipped, except on CI, where
``.ci/run`` installs it and its absence is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ServerProcess

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def find_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = find_chromium()
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


# Chromium itself logs each socket the page tries to open while offline.
OFFLINE = "net::ERR_INTERNET_DISCONNECTED"


def console_error(errors: list[str], name: str, message: Any) -> None:
    if message.type == "error" and OFFLINE not in message.text:
        errors.append(f"{name}: {message.text}")


@pytest.fixture
def open_page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """Opens the client in a fresh context; every page's errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def page_for(name: str) -> Any:
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1100, "height": 1000}
        )
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
        page.on("console", lambda msg: console_error(errors, name, msg))
        page.goto(server.base_url + "/")
        page.wait_for_function("() => window.pongClient !== undefined")
        return page

    yield page_for
    for context in contexts:
        context.close()
    assert errors == [], "the page reported errors"
