"""Headless Debian Chromium through Playwright, and a watch on what a page does.

Chromium is a required service: without /usr/bin/chromium the test fails with a message
saying how to install it (``apt-get install chromium``); Playwright's own browser download
is never used. ``PageWatch`` records every JavaScript dialog (and dismisses it) and every
request for a host other than 127.0.0.1 (and aborts it), so a test can assert that hostile
content stayed inert: no dialog opened, no request left the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Dialog, Page, Request, Route, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1"}
_INERT_SCHEMES = {"data", "about", "blob"}


@dataclass
class PageWatch:
    dialogs: list[str] = field(default_factory=list)
    leaving: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_inert(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.leaving == [], f"requests left 127.0.0.1: {self.leaving}"


async def watch(page: Page) -> PageWatch:
    """Record dialogs and outside requests of ``page`` (and of its frames)."""
    seen = PageWatch()

    async def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_request(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in _INERT_SCHEMES and parts.hostname not in LOCAL_HOSTS:
            seen.leaving.append(request.url)

    async def guard(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in _INERT_SCHEMES or parts.hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            await route.abort()

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    await page.route("**/*", guard)
    return seen


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def browser_page(browser: Browser) -> AsyncIterator[tuple[Page, PageWatch]]:
    """A fresh browser context (no cookies) with one watched page."""
    context = await browser.new_context(locale="ru-RU")
    try:
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield page, await watch(page)
    finally:
        await context.close()
