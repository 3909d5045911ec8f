"""Method arguments as the real server reads them: query string, form, multipart or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


class Params:
    """Typed access to raw arguments; form values are strings, JSON bodies are native."""

    def __init__(self, raw: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.raw = raw
        self.uploads = uploads or {}

    def has(self, name: str) -> bool:
        value = self.raw.get(name)
        return value is not None and value != ""

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    def bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        return isinstance(value, str) and value.lower() in {"true", "1"}

    def json(self, name: str, error: ApiError | None = None) -> Any:
        """A JSON-serialised argument (reply_markup, entities...), None when absent."""
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise error or bad_request(f"can't parse {name} JSON object") from None

    def upload(self, name: str) -> Upload | None:
        """The file sent for `name`, directly or as `attach://<part>`."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.raw.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            part = value.removeprefix("attach://")
            if part not in self.uploads:
                raise bad_request(f"file {part!r} not found in the request")
            return self.uploads[part]
        return None

    def loggable(self) -> dict[str, Any]:
        """Arguments for the call log: files replaced by a short description."""
        logged = dict(self.raw)
        for name, upload in self.uploads.items():
            logged[name] = f"<file {upload.filename} {len(upload.data)} bytes>"
        return logged
