#!/bin/sh
# Runs one `callcenter` command. Without CALLCENTER_DATABASE_URL, the PostgreSQL service of
# docker-compose.yml is used, its password taken from POSTGRES_PASSWORD (URL-quoted here).
set -eu
if [ -z "${CALLCENTER_DATABASE_URL:-}" ]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (or CALLCENTER_DATABASE_URL) in docker/callcenter.env}"
    CALLCENTER_DATABASE_URL="$(python - <<'PY'
import os
from urllib.parse import quote

user = quote(os.environ.get("POSTGRES_USER", "callcenter"), safe="")
password = quote(os.environ["POSTGRES_PASSWORD"], safe="")
host = os.environ.get("POSTGRES_HOST", "postgres")
database = quote(os.environ.get("POSTGRES_DB", "callcenter"), safe="")
print(f"postgresql+asyncpg://{user}:{password}@{host}:5432/{database}")
PY
)"
    export CALLCENTER_DATABASE_URL
fi
exec callcenter "$@"
