"""The web tests' signed-in visitors, for the event stream checks, and a migrated PostgreSQL
database of the test's own."""

from tests.dbs import migrated_postgres  # noqa: F401  (the `database` fixture)
from tests.web.conftest import app, server, signed_in, staff, visitor  # noqa: F401  (fixtures)
