"""Container health check: the web app's /healthz answers 200 (the database is reachable)."""

import os
import sys
import urllib.request

host = os.environ.get("CALLCENTER_WEB_HOST", "127.0.0.1")
port = os.environ.get("CALLCENTER_WEB_PORT", "8080")
try:
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as exc:
    print(f"healthz: {exc}", file=sys.stderr)
    sys.exit(1)
