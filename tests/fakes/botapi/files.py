"""Files the fake knows: registered by a test, pushed by a user or uploaded by the bot."""

from __future__ import annotations

import itertools
import secrets
import struct
from dataclasses import dataclass
from typing import Any

# Prefixes of real file_ids by kind, so ids look like the ones Telegram hands out.
_ID_PREFIX = {
    "photos": "AgACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "documents": "BQACAgIAAxkBAAI",
}
_EXTENSION = {"photos": ".jpg", "voice": ".oga", "documents": ""}
PHOTO_BOXES = (90, 320, 800, 1280, 2560)
MAX_DOWNLOAD_SIZE = 20 << 20


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    kind: str
    file_name: str | None = None
    mime_type: str | None = None
    file_path: str | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)

    def as_file(self) -> dict[str, Any]:
        """The Bot API File object."""
        result: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
        }
        if self.file_path:
            result["file_path"] = self.file_path
        return result


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._numbers = itertools.count()

    def add(
        self,
        data: bytes,
        kind: str = "documents",
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        stored = StoredFile(
            file_id=_ID_PREFIX.get(kind, "BQACAgIAAxkBAAI") + secrets.token_urlsafe(48),
            file_unique_id="AgAD" + secrets.token_urlsafe(9),
            data=bytes(data),
            kind=kind,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._by_id[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def assign_path(self, stored: StoredFile) -> str:
        """What getFile does: give the file a download path."""
        if stored.file_path is None:
            suffix = _EXTENSION.get(stored.kind, "")
            if stored.kind == "documents" and stored.file_name and "." in stored.file_name:
                suffix = "." + stored.file_name.rsplit(".", 1)[1]
            stored.file_path = f"{stored.kind}/file_{next(self._numbers)}{suffix}"
            self._by_path[stored.file_path] = stored
        return stored.file_path

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def photo_sizes(self, data: bytes) -> list[dict[str, Any]] | None:
        """PhotoSize list (smallest first) for an image, None if `data` is not an image.

        Telegram stores scaled copies; the fake serves the original bytes for every size.
        """
        size = image_size(data)
        if size is None:
            return None
        width, height = size
        longest = max(width, height, 1)
        boxes = [box for box in PHOTO_BOXES if box < longest] + [min(longest, 2560)]
        sizes = []
        for box in boxes:
            scale = min(1.0, box / longest)
            stored = self.add(data, "photos", mime_type="image/jpeg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                }
            )
        return sizes


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP image; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            return width, int.from_bytes(data[27:30], "little") + 1
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None
