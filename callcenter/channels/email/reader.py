"""Reading one IMAP mailbox into the database: IDLE when the server has it, polling otherwise.

Per batch: FETCH (BODY.PEEK, so nothing is marked read), store and advance the checkpoint in one
transaction, publish the events, and only then mark the batch \\Seen. A crash or a dropped
connection anywhere in between costs a re-fetch at most, never a lost or doubled mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.email.imap import ImapAccount, ImapClient, ImapError
from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.email.model import EmailRejected, ParsedEmail
from callcenter.channels.email.models import ImapCheckpoint

log = logging.getLogger(__name__)

BATCH = 50
IDLE_SECONDS = 300.0
"""Re-issue IDLE every five minutes, well inside the 29 minutes servers allow."""
POLL_SECONDS = 60.0
MAX_BACKOFF = 60.0
MARKED = ("stored", "duplicate", "own")
"""Outcomes that mark a mail \\Seen; a failed mail stays unseen for a person to look at."""


async def load_checkpoint(
    session: AsyncSession, account: str, mailbox: str
) -> ImapCheckpoint | None:
    return await session.scalar(
        select(ImapCheckpoint).where(
            ImapCheckpoint.account == account, ImapCheckpoint.mailbox == mailbox
        )
    )


class MailboxReader:
    def __init__(
        self,
        account: ImapAccount,
        mailbox: str,
        ingestor: EmailIngestor,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus | None,
        *,
        batch: int = BATCH,
        idle_seconds: float = IDLE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.account = account
        self.mailbox = mailbox
        self.ingestor = ingestor
        self.sessions = sessions
        self.bus = bus
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.poll_seconds = poll_seconds
        self._unmarked: set[int] = set()
        """Committed but not yet \\Seen (the connection dropped in between)."""
        self._unmarked_validity: int | None = None
        self.connections = 0
        self.syncs = 0
        """Completed passes over the mailbox (a connection that got this far was healthy)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop``, reconnecting with a growing pause after any failure."""
        pause = 0.5
        while not stop.is_set():
            client = ImapClient(self.account)
            synced = self.syncs
            try:
                await client.connect()
                self.connections += 1
                await self._serve(client, stop)
            except ImapError as exc:
                log.warning("IMAP %s/%s: %s; reconnecting", self.account.key, self.mailbox, exc)
            except DBAPIError as exc:
                log.error(
                    "IMAP %s/%s: database error %s; retrying", self.account.key, self.mailbox, exc
                )
            except Exception:
                log.exception("IMAP %s/%s failed; reconnecting", self.account.key, self.mailbox)
            finally:
                await client.close()
            if stop.is_set():
                return
            pause = 1.0 if self.syncs > synced else min(pause * 2, MAX_BACKOFF)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def _serve(self, client: ImapClient, stop: asyncio.Event) -> None:
        uidvalidity = await client.select(self.mailbox)
        await self._mark_left_over(client, uidvalidity)
        while not stop.is_set():
            await self.sync(client, uidvalidity, stop)
            if stop.is_set():
                return
            if client.has_idle:
                await client.idle(self.idle_seconds, stop)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def sync(self, client: ImapClient, uidvalidity: int, stop: asyncio.Event) -> int:
        """Store every message after the checkpoint; returns how many were fetched."""
        async with self.sessions() as session:
            checkpoint = await load_checkpoint(session, self.account.key, self.mailbox)
        last_uid = 0
        if checkpoint is not None and checkpoint.uidvalidity == uidvalidity:
            last_uid = checkpoint.last_uid
        elif checkpoint is not None:
            log.warning(
                "IMAP %s/%s: UIDVALIDITY changed (%s -> %s); reading the mailbox again",
                self.account.key,
                self.mailbox,
                checkpoint.uidvalidity,
                uidvalidity,
            )
        uids = await client.uids_after(last_uid)
        chunks = [uids[start : start + self.batch] for start in range(0, len(uids), self.batch)]
        fetched = 0
        # The next batch is fetched and parsed (in a thread) while this one is being stored:
        # IMAP, parsing and the database overlap. IMAP commands still run one at a time.
        ahead = asyncio.ensure_future(self._fetch(client, chunks[0])) if chunks else None
        try:
            for index, chunk in enumerate(chunks):
                if stop.is_set():
                    break
                assert ahead is not None
                messages, parsed = await ahead
                ahead = None
                if index + 1 < len(chunks):
                    ahead = asyncio.ensure_future(self._fetch(client, chunks[index + 1]))
                fetched += await self._batch(client, uidvalidity, chunk, messages, parsed, ahead)
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, ImapError):
                    await ahead
        self.syncs += 1
        return fetched

    async def _fetch(
        self, client: ImapClient, chunk: list[int]
    ) -> tuple[list[tuple[int, bytes]], list[ParsedEmail | EmailRejected]]:
        messages = await client.fetch(chunk)
        parsed = self.ingestor.parse_all([raw for _, raw in messages])
        return messages, parsed

    async def _batch(
        self,
        client: ImapClient,
        uidvalidity: int,
        chunk: list[int],
        messages: list[tuple[int, bytes]],
        parsed: list[ParsedEmail | EmailRejected],
        ahead: asyncio.Future[object] | None,
    ) -> int:
        prefix = f"imap:{self.account.key}/{self.mailbox}#"
        mails = [(raw, f"{prefix}{uid}") for uid, raw in messages]

        async def advance(session: AsyncSession) -> None:
            await self._save_checkpoint(session, uidvalidity, max(chunk))

        result = await self.ingestor.store_batch(
            self.sessions, mails, parsed=parsed, before_commit=advance
        )
        if self.bus is not None:
            for event in result.events:
                self.bus.publish(event)
        done = {
            uid
            for (uid, _), outcome in zip(messages, result.outcomes, strict=True)
            if outcome.status in MARKED
        }
        self._unmarked |= done
        self._unmarked_validity = uidvalidity
        if ahead is not None:
            await asyncio.wait([ahead])  # one IMAP command at a time: the fetch ahead first
        await client.mark_seen(done)
        self._unmarked -= done
        log.info(
            "IMAP %s/%s: %d mails up to UID %d stored",
            self.account.key,
            self.mailbox,
            len(messages),
            max(chunk),
        )
        return len(messages)

    async def _save_checkpoint(self, session: AsyncSession, uidvalidity: int, uid: int) -> None:
        checkpoint = await load_checkpoint(session, self.account.key, self.mailbox)
        if checkpoint is None:
            session.add(
                ImapCheckpoint(
                    account=self.account.key,
                    mailbox=self.mailbox,
                    uidvalidity=uidvalidity,
                    last_uid=uid,
                )
            )
        elif checkpoint.uidvalidity != uidvalidity:
            checkpoint.uidvalidity = uidvalidity
            checkpoint.last_uid = uid
        else:
            checkpoint.last_uid = max(checkpoint.last_uid, uid)

    async def _mark_left_over(self, client: ImapClient, uidvalidity: int) -> None:
        """Mark \\Seen what was committed before the last connection dropped."""
        if self._unmarked and self._unmarked_validity == uidvalidity:
            await client.mark_seen(self._unmarked)
        self._unmarked.clear()
