"""The web fixtures (running app, staff, visitors, Chromium) for the analytics tests."""

from tests.web.conftest import (  # noqa: F401  (fixtures)
    app,
    browser,
    browser_page,
    server,
    signed_in,
    staff,
    visitor,
)
