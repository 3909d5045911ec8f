"""The web tests' signed-in visitors, for the event stream checks."""

from tests.web.conftest import app, server, signed_in, staff, visitor  # noqa: F401  (fixtures)
