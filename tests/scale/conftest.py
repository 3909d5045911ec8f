"""The real Asterisk, its AMI session and sipp phones, shared with the telephony tests, and a
migrated PostgreSQL database of the test's own."""

from tests.dbs import migrated_postgres  # noqa: F401  (the `database` fixture)
from tests.telephony.conftest import (  # noqa: F401  (fixtures)
    ami,
    ami_client,
    pbx,
    sipp_binary,
    start_sipp,
)
