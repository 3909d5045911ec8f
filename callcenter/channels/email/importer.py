"""``callcenter import-eml PATH...``: .eml files and mbox archives, stored like IMAP mail.

For migrating an old mailbox: folders are walked, mbox archives (recognised by their leading
``From `` line, whatever the file name) are split with the stdlib ``mailbox`` module. Nothing is
published on the bus, so old mail triggers no acknowledgements. Importing the same files
again stores nothing twice (Message-ID, or a content hash when there is none).
"""

from __future__ import annotations

import logging
import mailbox
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email.ingest import EmailIngestor, Outcome
from callcenter.config import Settings

log = logging.getLogger(__name__)

_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
BATCH = 100
BATCH_BYTES = 64 << 20
"""A batch is cut early when its mail adds up to this much (huge attachments)."""


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    automatic: int = 0
    failures: list[Outcome] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Paths that could not be read at all (missing, a directory of nothing, no permission)."""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unreadable

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status == "stored" and outcome.automatic:
            self.automatic += 1
        if outcome.status == "failed":
            self.failures.append(outcome)

    def format(self) -> str:
        lines = [
            f"stored: {self.counts['stored']} (automatic: {self.automatic})",
            f"already there: {self.counts['duplicate']}",
            f"our own mail, skipped: {self.counts['own']}",
            f"failed: {self.counts['failed']}",
        ]
        lines += [f"  {f.source}: {f.error}" for f in self.failures]
        lines += [f"unreadable: {path}" for path in self.unreadable]
        return "\n".join(lines)


def unquote_from(raw: bytes) -> bytes:
    """Undo the mbox writer's ``>From `` quoting (mboxrd: one level per line)."""
    return _QUOTED_FROM.sub(rb"\1", raw)


def is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _files(paths: Iterable[Path], summary: ImportSummary) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not found:
                summary.unreadable.append(f"{path} (no files)")
            yield from found
        elif path.is_file():
            yield path
        else:
            summary.unreadable.append(f"{path} (no such file)")


def _mails(paths: Iterable[Path], summary: ImportSummary) -> Iterator[tuple[bytes, str]]:
    """(raw bytes, source) for every mail in the paths."""
    for path in _files(paths, summary):
        try:
            if not is_mbox(path):
                yield path.read_bytes(), str(path)
                continue
            archive = mailbox.mbox(path, create=False)
            try:
                for number, key in enumerate(archive.iterkeys(), start=1):
                    yield unquote_from(archive.get_bytes(key)), f"{path}#{number}"
            finally:
                archive.close()
        except OSError as exc:
            log.error("cannot read %s: %s", path, exc)
            summary.unreadable.append(f"{path} ({exc.strerror or exc})")


def _batches(mails: Iterator[tuple[bytes, str]]) -> Iterator[list[tuple[bytes, str]]]:
    batch: list[tuple[bytes, str]] = []
    size = 0
    for mail in mails:
        batch.append(mail)
        size += len(mail[0])
        if len(batch) >= BATCH or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def import_paths(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    paths: Sequence[Path | str],
) -> ImportSummary:
    """Import every mail under ``paths``; one transaction per batch of mails."""
    ingestor = EmailIngestor(settings)
    summary = ImportSummary()
    for batch in _batches(_mails([Path(p) for p in paths], summary)):
        result = await ingestor.store_batch(sessions, batch)
        for outcome in result.outcomes:
            summary.add(outcome)
        log.info("imported a batch of %d mails (up to %s)", len(batch), batch[-1][1])
    return summary
