"""Visitors of a running test server: one cookie jar each, with CSRF-aware form posts."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from yarl import URL

_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
HTML = {"Accept": "text/html"}


def csrf_from(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found[1]


class Visitor:
    """A browser-like client: its own cookies; ``post_form`` sends the page's CSRF token."""

    def __init__(self, base: URL) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        kwargs.setdefault("allow_redirects", False)
        return await self.http.get(self.url(path), **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        kwargs.setdefault("allow_redirects", False)
        return await self.http.post(self.url(path), **kwargs)

    async def refresh_csrf(self, path: str = "/login") -> str:
        response = await self.get(path, headers=HTML)
        self.csrf = csrf_from(await response.text())
        return self.csrf

    async def post_form(self, path: str, data: dict[str, str]) -> aiohttp.ClientResponse:
        if not self.csrf:
            await self.refresh_csrf()
        return await self.post(path, data={**data, "_csrf": self.csrf})

    async def login(self, username: str, password: str | None = None) -> aiohttp.ClientResponse:
        await self.refresh_csrf("/login")
        response = await self.post(
            "/login",
            data={
                "username": username,
                "password": password or f"password-{username}",
                "_csrf": self.csrf,
            },
        )
        if response.status == 303:
            await self.refresh_csrf("/agent")
        return response

    async def close(self) -> None:
        await self.http.close()
