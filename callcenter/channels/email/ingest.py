"""Storing received mail: raw bytes -> ParsedEmail -> InboundMessage -> ``inbox.ingest``.

Used alike by the IMAP worker and ``callcenter import-eml``. Mail is stored in batches, one
transaction each, every mail in its own savepoint: a mail that cannot be stored is recorded as
an ``EmailFailure`` (raw bytes kept on disk) without costing the rest of its batch, while a
database failure rolls the whole batch back for the caller to retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email import threading
from callcenter.channels.email.files import AttachmentStore
from callcenter.channels.email.model import EmailRejected, ParsedEmail
from callcenter.channels.email.models import EmailFailure
from callcenter.channels.email.parse import parse_email
from callcenter.classify import Classification, classify
from callcenter.config import Settings
from callcenter.domain.errors import DomainError
from callcenter.domain.identity import normalize_email
from callcenter.domain.inbox import InboundMessage, IngestResult, ingest, ingest_many
from callcenter.models import (
    Channel,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    utcnow,
)

log = logging.getLogger(__name__)

PARSE_IN_THREAD_ABOVE = 256 * 1024
MAX_EXTERNAL_ID = 255
FUTURE_SLACK = timedelta(hours=1)
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")

NOTE_TOO_LARGE = {
    "ru": "Вложение «{name}» ({size}) не сохранено: оно больше лимита {limit}. Источник: {source}",
    "en": "Attachment “{name}” ({size}) was not stored: it exceeds the {limit} limit. "
    "Source: {source}",
}


@dataclass
class Outcome:
    """What became of one mail."""

    source: str
    status: str
    """stored, duplicate, own (a copy of our own mail), or failed."""
    message_id: str | None = None
    interaction_id: int | None = None
    ticket_id: int | None = None
    automatic: bool = False
    error: str = ""


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[object] = field(default_factory=list)


@dataclass
class _Prepared:
    message: InboundMessage
    files: list[tuple[dict[str, Any], bytes | None]]


class _Unstorable(Exception):
    """This mail cannot become an interaction; the message says why."""


def external_id(message_id: str) -> str:
    """The Interaction key: the Message-ID, or its digest when too long for the column."""
    if len(message_id) <= MAX_EXTERNAL_ID:
        return message_id
    return f"sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


def guess_language(text: str, default: str) -> str:
    if _CYRILLIC.search(text):
        return "ru"
    if _LATIN.search(text):
        return "en"
    return default


def _outcome(mail: ParsedEmail, source: str, result: IngestResult) -> Outcome:
    return Outcome(
        source,
        "duplicate" if result.duplicate else "stored",
        mail.message_id,
        interaction_id=result.interaction.id,
        ticket_id=result.ticket.id if result.ticket else None,
        automatic=mail.auto_submitted,
    )


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


class EmailIngestor:
    def __init__(
        self,
        settings: Settings,
        *,
        classifier: Callable[[str], Classification] = classify,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.files = AttachmentStore(settings.data_dir, settings.email_max_attachment_bytes)
        self.limit = settings.email_max_attachment_bytes
        self.classifier = classifier
        self.now = now
        self.domain = threading.own_domain(settings.smtp_from)
        own = parseaddr(settings.smtp_from)[1].strip()
        self.own_address = own.lower() if "@" in own else ""

    async def parse(self, raw: bytes) -> ParsedEmail | EmailRejected:
        """Parse off the event loop when the mail is large; rejections are returned."""
        try:
            if len(raw) > PARSE_IN_THREAD_ABOVE:
                return await asyncio.to_thread(parse_email, raw, max_attachment_bytes=self.limit)
            return parse_email(raw, max_attachment_bytes=self.limit)
        except EmailRejected as exc:
            return exc

    def parse_all(self, raws: Sequence[bytes]) -> list[ParsedEmail | EmailRejected]:
        """Parse a batch in one go (blocking: call it in a thread to overlap other work)."""
        parsed: list[ParsedEmail | EmailRejected] = []
        for raw in raws:
            try:
                parsed.append(parse_email(raw, max_attachment_bytes=self.limit))
            except EmailRejected as exc:
                parsed.append(exc)
        return parsed

    async def store_batch(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mails: Sequence[tuple[bytes, str]],
        *,
        parsed: Sequence[ParsedEmail | EmailRejected] | None = None,
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> BatchResult:
        """Store ``(raw, source)`` mails in one transaction; publish ``events`` after it.
        ``parsed``: the mails already parsed (`parse_all`), in the same order.

        Mail is stored with ``ingest_many`` and without savepoints first; if any mail fails,
        the batch is rolled back and stored again one mail at a time, each in a savepoint, so
        that the failure is recorded and the rest stored.
        """
        if parsed is None:
            parsed = [await self.parse(raw) for raw, _ in mails]
        parsed = list(parsed)
        try:
            return await self._store_all(sessions, mails, parsed, before_commit, careful=False)
        except DBAPIError:
            raise
        except Exception:
            log.info("a mail in a batch of %d failed; storing them one by one", len(mails))
        return await self._store_all(sessions, mails, parsed, before_commit, careful=True)

    async def _store_all(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mails: Sequence[tuple[bytes, str]],
        parsed: list[ParsedEmail | EmailRejected],
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None,
        *,
        careful: bool,
    ) -> BatchResult:
        result = BatchResult()
        async with sessions() as session, session.begin():
            if careful:
                stored = [
                    await self.store(session, raw, mail, source)
                    for (raw, source), mail in zip(mails, parsed, strict=True)
                ]
            else:
                writes: list[asyncio.Future[None]] = []
                try:
                    stored = await self._store_runs(session, mails, parsed, writes)
                finally:
                    # Every file on disk before the commit that refers to it; none left
                    # being written when the batch fails.
                    written = await asyncio.gather(*writes, return_exceptions=True)
                for error in written:
                    if isinstance(error, BaseException):
                        raise error
            for outcome, events in stored:
                result.outcomes.append(outcome)
                result.events += events
            if before_commit is not None:
                await before_commit(session)
        return result

    async def store(
        self,
        session: AsyncSession,
        raw: bytes,
        mail: ParsedEmail | EmailRejected,
        source: str,
    ) -> tuple[Outcome, list[object]]:
        """Store one parsed mail in the caller's transaction; a failure is contained in a
        savepoint and recorded."""
        if isinstance(mail, EmailRejected):
            return await self._failed(session, raw, source, None, f"not an email: {mail}"), []
        if self._is_own(mail):
            return Outcome(source, "own", mail.message_id, automatic=mail.auto_submitted), []
        key = external_id(mail.message_id)
        try:
            async with session.begin_nested():
                result = await self._ingest(session, raw, mail, key, source)
        except DBAPIError:
            raise
        except (_Unstorable, DomainError) as exc:
            return await self._failed(session, raw, source, mail.message_id, str(exc)), []
        except Exception as exc:
            log.exception("email %s from %s could not be stored", mail.message_id, source)
            error = f"{type(exc).__name__}: {exc}"
            return await self._failed(session, raw, source, mail.message_id, error), []
        return _outcome(mail, source, result), result.events

    async def _store_runs(
        self,
        session: AsyncSession,
        mails: Sequence[tuple[bytes, str]],
        parsed: list[ParsedEmail | EmailRejected],
        writes: list[asyncio.Future[None]],
    ) -> list[tuple[Outcome, list[object]]]:
        """Store mail with ``ingest_many``, a run at a time, failures propagating.

        A run ends before a mail that depends on one in it (a reply threaded to it, a bounce,
        which marks addresses as failing) so that every mail sees the earlier ones stored, as
        when mail is stored one by one.
        """
        stored: list[tuple[Outcome, list[object]]] = []
        run: list[tuple[int, ParsedEmail, str, _Prepared]] = []
        in_run: set[str] = set()
        # Threading for the whole batch in one lookup, kept up to date as runs are stored.
        refers_to = [
            threading.candidate_ids(mail.in_reply_to, mail.references)
            if isinstance(mail, ParsedEmail)
            else []
            for mail in parsed
        ]
        threads = await threading.tickets_of_ids(
            session, (i for ids in refers_to for i in ids), self.domain
        )
        for (raw, source), mail, refers in zip(mails, parsed, refers_to, strict=True):
            if isinstance(mail, EmailRejected) or self._is_own(mail):
                stored.append(await self.store(session, raw, mail, source))
                continue
            if (mail.is_bounce and mail.failed_recipients) or in_run.intersection(refers):
                await self._ingest_run(session, run, stored, threads, writes)
                run, in_run = [], set()
            key = external_id(mail.message_id)
            prepared = await self._prepare(session, raw, mail, key, threads)
            run.append((len(stored), mail, source, prepared))
            in_run.add(key)
            stored.append((Outcome(source, "pending"), []))
        await self._ingest_run(session, run, stored, threads, writes)
        return stored

    async def _ingest_run(
        self,
        session: AsyncSession,
        run: list[tuple[int, ParsedEmail, str, _Prepared]],
        stored: list[tuple[Outcome, list[object]]],
        threads: dict[str, int],
        writes: list[asyncio.Future[None]],
    ) -> None:
        """Store a run with ``ingest_many``; ``threads`` learns the tickets of its mails, and
        ``writes`` gets the writing of its files, done in a thread while the batch goes on."""
        if not run:
            return
        results = await ingest_many(
            session,
            [prepared.message for _, _, _, prepared in run],
            classifier=self.classifier,
            region=self.settings.default_region,
        )
        files: list[tuple[dict[str, Any], bytes | None]] = []
        for (slot, mail, source, prepared), result in zip(run, results, strict=True):
            files += self._kept(session, result, prepared, source)
            stored[slot] = (_outcome(mail, source, result), result.events)
            interaction = result.interaction
            if interaction.ticket_id is not None and interaction.external_id is not None:
                threads.setdefault(interaction.external_id, interaction.ticket_id)
        if files:
            writes.append(
                asyncio.ensure_future(asyncio.to_thread(self.files.store_blocking, files))
            )

    def _is_own(self, mail: ParsedEmail) -> bool:
        """A copy of a mail we sent (a Sent folder, a Bcc to ourselves): never a customer's."""
        ours = threading.outbox_id_of(mail.message_id) is not None and mail.message_id.endswith(
            f"@{self.domain}"
        )
        return ours or bool(
            self.own_address and (mail.from_address or "").lower() == self.own_address
        )

    async def _ingest(
        self, session: AsyncSession, raw: bytes, mail: ParsedEmail, key: str, source: str
    ) -> IngestResult:
        prepared = await self._prepare(session, raw, mail, key)
        result = await ingest(
            session,
            prepared.message,
            classifier=self.classifier,
            region=self.settings.default_region,
        )
        await self._stored(session, result, prepared, source)
        return result

    async def _prepare(
        self,
        session: AsyncSession,
        raw: bytes,
        mail: ParsedEmail,
        key: str,
        threads: Mapping[str, int] | None = None,
    ) -> _Prepared:
        """The InboundMessage for a mail (threaded, the sender decided) and its files.
        ``threads``: the tickets of the ids the mail refers to, when already looked up."""
        sender = await self._sender(session, mail)
        refers = threading.candidate_ids(mail.in_reply_to, mail.references)
        if threads is None:
            hint = await threading.ticket_by_ids(session, refers, self.domain)
        else:
            hint = threading.first_ticket(refers, threads)
        if hint is None:
            hint = threading.subject_ticket(mail.subject)
        files = [self.files.describe_original(raw)]
        files += [self.files.describe(a, "file") for a in mail.attachments]
        files += [self.files.describe(a, "inline") for a in mail.inline_images]
        attachments = [record for record, _ in files]
        subject = threading.clean_subject(mail.subject)
        message = InboundMessage(
            channel=Channel.EMAIL,
            external_id=key,
            identity_kind=IdentityKind.EMAIL,
            identity_value=sender,
            occurred_at=self._when(mail),
            text=mail.text_trimmed,
            display_name="" if mail.is_bounce else mail.from_name,
            subject=subject,
            html=mail.html_sanitized,
            attachments=attachments,
            ticket_hint=hint,
            automatic=mail.auto_submitted,
            language=guess_language(f"{subject}\n{mail.text_trimmed}", self.settings.language),
        )
        return _Prepared(message, files)

    async def _stored(
        self, session: AsyncSession, result: IngestResult, prepared: _Prepared, source: str
    ) -> None:
        """Keep the files of a newly stored mail and note those too large to keep."""
        await self.files.store(self._kept(session, result, prepared, source))

    def _kept(
        self, session: AsyncSession, result: IngestResult, prepared: _Prepared, source: str
    ) -> list[tuple[dict[str, Any], bytes | None]]:
        """The files to write for a stored mail (none for a duplicate); notes on its ticket
        for those too large to keep."""
        if result.duplicate:
            return []
        if result.ticket is not None:
            self._note_skipped(session, result, prepared.message.attachments, source)
        return prepared.files

    async def _sender(self, session: AsyncSession, mail: ParsedEmail) -> str:
        """Whose timeline the mail goes on; a bounce marks the failed addresses as failing
        and goes on the timeline of the customer it failed to reach."""
        if mail.is_bounce and mail.failed_recipients:
            failed = []
            for address in mail.failed_recipients:
                try:
                    failed.append(normalize_email(address))
                except DomainError:
                    log.info("bounce names an invalid address %r", address)
            if failed:
                await session.execute(
                    update(Identity)
                    .where(Identity.kind == IdentityKind.EMAIL, Identity.value.in_(failed))
                    .values(failing=True)
                )
                known = await session.scalar(
                    select(Identity.value)
                    .where(Identity.kind == IdentityKind.EMAIL, Identity.value.in_(failed))
                    .limit(1)
                )
                if known is not None:
                    return known
        if not mail.from_address:
            raise _Unstorable("the mail has no sender address")
        return mail.from_address

    def _when(self, mail: ParsedEmail) -> datetime:
        """The Date header, unless absent or in the future (a wrong clock): then now."""
        now = self.now()
        if mail.date is None or mail.date > now + FUTURE_SLACK:
            return now
        return mail.date

    def _note_skipped(
        self,
        session: AsyncSession,
        result: IngestResult,
        attachments: list[dict[str, Any]],
        source: str,
    ) -> None:
        """An internal note on the ticket for each attachment too large to keep."""
        template = NOTE_TOO_LARGE.get(self.settings.language, NOTE_TOO_LARGE["en"])
        for record in attachments:
            if record["kind"] == "original" or not record.get("too_large"):
                continue
            text = template.format(
                name=record["filename"],
                size=_size(record["size"]),
                limit=_size(self.limit),
                source=source,
            )
            session.add(
                Interaction(
                    customer_id=result.customer.id,
                    ticket_id=result.ticket.id if result.ticket else None,
                    channel=Channel.NOTE,
                    direction=Direction.INTERNAL,
                    text=text,
                    occurred_at=result.interaction.occurred_at,
                )
            )

    async def _failed(
        self,
        session: AsyncSession,
        raw: bytes,
        source: str,
        message_id: str | None,
        error: str,
    ) -> Outcome:
        path = await self.files.keep_failed(raw)
        log.error("email from %s not stored (%s); kept as %s", source, error, path)
        session.add(
            EmailFailure(
                source=source[:500],
                sha256=path.stem,
                path=str(path)[:500],
                error=error,
            )
        )
        return Outcome(source, "failed", message_id, error=error)
