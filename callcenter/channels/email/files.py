"""Attachment bytes on disk, content-addressed: ``<data_dir>/attachments/<sha256>``.

Files are written before the transaction that refers to them commits; a file left behind by a
rolled-back transaction is harmless (the same content gets the same name), never the reverse.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

from .model import Attachment

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
THREAD_ABOVE = 1 << 20
"""Files larger than this are written off the event loop."""


class AttachmentStore:
    def __init__(self, data_dir: Path, limit: int) -> None:
        self.root = data_dir / "attachments"
        self.failed_root = data_dir / "email-failed"
        self.limit = limit

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256

    async def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store bytes once; returns their sha256 (the name under the attachments folder)."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        await _write_once(self.path_of(digest), data)
        return digest

    async def keep_failed(self, raw: bytes) -> Path:
        """Keep a mail that could not be stored, for a person to look at."""
        path = self.failed_root / f"{hashlib.sha256(raw).hexdigest()}.eml"
        await _write_once(path, raw)
        return path

    def describe(self, attachment: Attachment, kind: str) -> tuple[dict[str, Any], bytes | None]:
        """The attachment's record for ``Interaction.attachments``, and the bytes to store."""
        stored = attachment.data is not None and attachment.size <= self.limit
        record: dict[str, Any] = {
            "kind": kind,
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "sha256": attachment.sha256,
            "path": attachment.sha256 if stored else None,
            "stored": stored,
            "too_large": attachment.size > self.limit,
        }
        if attachment.content_id:
            record["content_id"] = attachment.content_id
        if not stored:
            record["skipped_reason"] = attachment.skipped_reason or f"larger than {self.limit}"
        return record, attachment.data if stored else None

    def describe_original(self, raw: bytes) -> tuple[dict[str, Any], bytes | None]:
        """The record of the mail as received (quotes and signatures included)."""
        digest = hashlib.sha256(raw).hexdigest()
        stored = len(raw) <= self.limit
        record: dict[str, Any] = {
            "kind": "original",
            "filename": "message.eml",
            "content_type": "message/rfc822",
            "size": len(raw),
            "sha256": digest,
            "path": digest if stored else None,
            "stored": stored,
            "too_large": not stored,
        }
        if not stored:
            record["skipped_reason"] = f"larger than {self.limit} bytes"
        return record, raw if stored else None

    async def store(self, records: list[tuple[dict[str, Any], bytes | None]]) -> None:
        """Write the bytes of described records (before their transaction commits)."""
        for record, data in records:
            if data is not None:
                await self.put(data, record["sha256"])

    def store_blocking(self, records: list[tuple[dict[str, Any], bytes | None]]) -> None:
        """`store` for a worker thread: a batch's files written while the loop goes on."""
        for record, data in records:
            path = self.path_of(record["sha256"])
            if data is not None and not path.exists():
                _write_atomically(path, data)


async def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    if len(data) > THREAD_ABOVE:
        await asyncio.to_thread(_write_atomically, path, data)
    else:
        _write_atomically(path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        try:
            partial.write_bytes(data)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
