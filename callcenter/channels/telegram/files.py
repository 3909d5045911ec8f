"""Photos, documents and voice messages: described at intake, stored on disk, served to agents.

The attachment record is written with the message; the bytes are fetched after the commit (a
slow download never holds a transaction) and again on first access if that fetch was lost.
Files above the size limit are recorded as ``too_large`` and never downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.types import Message

from callcenter.channels.telegram.redact import redact

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 << 20
"""The Bot API serves files up to 20 MB to bots; shops may set a lower limit."""

DOWNLOADABLE = ("photo", "document", "voice")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class AttachmentUnavailable(Exception):
    """The file cannot be served: too large, or Telegram would not give it."""


def _storage_name(file_unique_id: str) -> str:
    if _SAFE_NAME.match(file_unique_id):
        return file_unique_id
    return hashlib.sha256(file_unique_id.encode()).hexdigest()


def describe(message: Message, limit: int = MAX_FILE_BYTES) -> list[dict[str, Any]]:
    """Attachment records for a message: photo (largest size within the limit), document,
    voice; other content (stickers, video, locations...) is recorded by kind only."""
    found: dict[str, Any] | None = None
    kind = ""
    if message.photo:
        fitting = [p for p in message.photo if (p.file_size or 0) <= limit]
        chosen = fitting[-1] if fitting else message.photo[-1]
        kind = "photo"
        found = {
            "file_id": chosen.file_id,
            "file_unique_id": chosen.file_unique_id,
            "size": chosen.file_size,
            "mime_type": "image/jpeg",
            "width": chosen.width,
            "height": chosen.height,
        }
    elif message.document:
        kind = "document"
        doc = message.document
        found = {
            "file_id": doc.file_id,
            "file_unique_id": doc.file_unique_id,
            "size": doc.file_size,
            "file_name": (doc.file_name or "")[:255],
            "mime_type": doc.mime_type or "application/octet-stream",
        }
    elif message.voice:
        kind = "voice"
        voice = message.voice
        found = {
            "file_id": voice.file_id,
            "file_unique_id": voice.file_unique_id,
            "size": voice.file_size,
            "mime_type": voice.mime_type or "audio/ogg",
            "duration": voice.duration,
        }
    if found is None:
        content = str(message.content_type)
        return [] if content in ("text", "contact") else [{"kind": content, "stored": False}]
    too_large = (found["size"] or 0) > limit
    return [
        {
            "kind": kind,
            **found,
            "path": f"telegram/{_storage_name(found['file_unique_id'])}",
            "too_large": too_large,
        }
    ]


class TelegramFiles:
    """Attachment bytes under ``root`` (``<data_dir>/attachments``)."""

    def __init__(self, root: Path, bot: Bot, limit: int = MAX_FILE_BYTES) -> None:
        self.root = root
        self.bot = bot
        self.limit = limit

    def local_path(self, attachment: dict[str, Any]) -> Path:
        name = Path(str(attachment.get("path", ""))).name
        if not _SAFE_NAME.match(name) and not re.fullmatch(r"[0-9a-f]{64}", name):
            raise AttachmentUnavailable("not a Telegram attachment")
        return self.root / "telegram" / name

    async def open(self, attachment: dict[str, Any]) -> Path:
        """The stored file, fetched from Telegram now if it is not on disk yet."""
        if attachment.get("kind") not in DOWNLOADABLE or not attachment.get("file_id"):
            raise AttachmentUnavailable(f"no file in a {attachment.get('kind')!r} attachment")
        if attachment.get("too_large") or (attachment.get("size") or 0) > self.limit:
            raise AttachmentUnavailable(f"file larger than {self.limit} bytes is not stored")
        path = self.local_path(attachment)
        if not path.exists():
            await self._download(attachment["file_id"], path)
        return path

    async def fetch_quietly(self, attachments: list[dict[str, Any]]) -> None:
        """After-commit prefetch; failures are logged, the agent's first access retries."""
        for attachment in attachments:
            if attachment.get("kind") not in DOWNLOADABLE or attachment.get("too_large"):
                continue
            try:
                await self.open(attachment)
            except AttachmentUnavailable as exc:
                log.warning("telegram attachment not stored: %s", exc)

    async def _download(self, file_id: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            info = await self.bot.get_file(file_id)
            if (info.file_size or 0) > self.limit or not info.file_path:
                raise AttachmentUnavailable(f"file larger than {self.limit} bytes is not stored")
            written = 0
            url = self.bot.session.api.file_url(self.bot.token, info.file_path)
            with partial.open("wb") as out:
                async for chunk in self.bot.session.stream_content(url, timeout=60):
                    written += len(chunk)
                    if written > self.limit:
                        raise AttachmentUnavailable(
                            f"file larger than {self.limit} bytes is not stored"
                        )
                    out.write(chunk)
            partial.replace(path)
        except AttachmentUnavailable:
            raise
        except Exception as exc:
            # aiohttp errors quote the download URL, which holds the bot token.
            raise AttachmentUnavailable(redact(f"{type(exc).__name__}: {exc}")) from None
        finally:
            partial.unlink(missing_ok=True)
