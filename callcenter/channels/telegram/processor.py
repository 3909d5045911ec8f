"""Storing a batch of updates exactly once, whichever way they arrived (polling or webhook).

A batch is one transaction that first writes its update ids to ``telegram_updates`` in one
statement skipping those already there (``_claim``); only the updates it wrote are handled, each
in a savepoint, so a batch delivered again after a crash (the polling offset is confirmed only
after the commit) stores nothing twice. An update
whose handling fails on bad data is kept with its error and raw JSON instead of blocking the
queue; a database failure fails the whole batch, which is then delivered again.

With a ``Prestore``, a run of plain private messages is stored together instead: their update
ids and messages in a few statements, then each handler in turn (called directly, not through
the dispatcher), then all their replies, in one savepoint. Anything unexpected in the run (a
failing handler, another worker storing an update first, a handler that did not take its stored
message) rolls the run back and handles it update by update.

A batch of nothing but plain messages (the usual case) is first tried without any savepoint;
if that fails, the whole transaction is rolled back and the batch is stored as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from sqlalchemy import delete
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telegram.models import TelegramUpdate
from callcenter.channels.telegram.outbound import queue_replies
from callcenter.channels.telegram.prestore import Prestore, is_plain
from callcenter.channels.telegram.redact import redact
from callcenter.channels.telegram.turn import Turn

log = logging.getLogger(__name__)

UPDATES = TelegramUpdate.__table__

KEEP_SEEN = timedelta(days=7)
"""Telegram keeps an unconfirmed update for 24 hours; remembering ids a week is ample."""


class _Redo(Exception):
    """Storing a batch together without savepoints failed: roll back, redo it carefully."""


class _NotTaken(Exception):
    """A handler in a run did not take the message stored for it."""


class UpdateProcessor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bot: Bot,
        dispatcher: Dispatcher,
        bus: Bus,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_replies: Callable[[], None] = lambda: None,
        prestore: Prestore | None = None,
    ) -> None:
        self.sessions = sessions
        self.bot = bot
        self.dispatcher = dispatcher
        self.bus = bus
        self.now = now
        self.on_replies = on_replies
        self.prestore = prestore
        self._background: set[asyncio.Task[object]] = set()

    async def process(self, updates: Sequence[Update]) -> int:
        """Store and answer a batch; returns how many updates were new. Raises (and stores
        nothing) when the database fails, so that the caller does not confirm the batch."""
        try:
            turns = await self._store(updates, optimistic=True)
        except _Redo as redo:
            if isinstance(redo.__cause__, IntegrityError):
                log.info("telegram updates were stored by another worker; again, one by one")
            else:
                log.info("a batch of telegram updates is handled one by one: %r", redo.__cause__)
            turns = await self._store(updates, optimistic=False)
        self._after_commit(turns)
        return len(turns)

    async def _store(self, updates: Sequence[Update], *, optimistic: bool) -> list[Turn]:
        """One transaction for the batch. ``optimistic``: a batch of plain messages only is
        stored together without savepoints; if that fails, ``_Redo`` rolls it all back."""
        turns: list[Turn] = []
        async with self.sessions() as session, session.begin():
            claimed = await self._claim(session, updates)
            fresh = []
            for update in updates:
                if update.update_id in claimed:
                    claimed.discard(update.update_id)
                    fresh.append(update)
            if optimistic and len(fresh) > 1 and all(map(self._plain, fresh)):
                try:
                    return await self._together(session, fresh, savepoint=False)
                except DBAPIError as exc:
                    if isinstance(exc, IntegrityError):
                        raise _Redo from exc
                    raise
                except Exception as exc:
                    raise _Redo from exc
            for run in self._runs(fresh):
                turns += await self._run(session, run)
        return turns

    async def _claim(self, session: AsyncSession, updates: Sequence[Update]) -> set[int]:
        """Write the batch's update ids in one statement; returns those not stored before.
        A concurrent batch's uncommitted id makes this wait for that batch's outcome."""
        if not updates:
            return set()
        now = self.now()
        rows = [{"update_id": i, "received_at": now} for i in {u.update_id for u in updates}]
        dialect = session.get_bind().dialect.name
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(UPDATES)
        return set(
            await session.scalars(
                statement.values(rows)
                .on_conflict_do_nothing(index_elements=[UPDATES.c.update_id])
                .returning(UPDATES.c.update_id)
            )
        )

    def _plain(self, update: Update) -> bool:
        return self.prestore is not None and is_plain(update)

    def _runs(self, updates: Sequence[Update]) -> Iterator[list[Update]]:
        """Consecutive plain messages together (with a ``prestore``), other updates alone."""
        run: list[Update] = []
        for update in updates:
            if self._plain(update):
                run.append(update)
                continue
            if run:
                yield run
                run = []
            yield [update]
        if run:
            yield run

    async def _run(self, session: AsyncSession, run: list[Update]) -> list[Turn]:
        if len(run) > 1:
            try:
                return await self._together(session, run)
            except IntegrityError:
                log.info("telegram updates were stored by another worker; one by one")
            except DBAPIError:
                raise
            except Exception as exc:
                log.info("a run of %d telegram updates is handled one by one: %r", len(run), exc)
        turns = []
        for update in run:
            turn = await self._one(session, update)
            if turn is not None:
                turns.append(turn)
        return turns

    async def _together(
        self, session: AsyncSession, run: list[Update], *, savepoint: bool = True
    ) -> list[Turn]:
        assert self.prestore is not None
        turns = [Turn(session, update.update_id, self.now()) for update in run]
        async with session.begin_nested() if savepoint else contextlib.nullcontext():
            prepared, shared = await self.prestore(session, run, savepoint=savepoint)
            for update, turn, ready in zip(run, turns, prepared, strict=True):
                assert update.message is not None
                turn.prepared, turn.shared = ready, shared
                await self.prestore.handler(update.message, turn)
                if not turn.took_prepared:
                    raise _NotTaken(f"update {update.update_id}")
            await queue_replies(session, shared.replies)
        return turns

    async def _one(self, session: AsyncSession, update: Update) -> Turn | None:
        now = self.now()
        turn = Turn(session, update.update_id, now)
        try:
            async with session.begin_nested():
                await self.dispatcher.feed_update(self.bot, update, turn=turn)
        except IntegrityError as exc:
            await self._keep_failed(session, update, exc)
            return None
        except DBAPIError:
            raise
        except Exception as exc:
            await self._keep_failed(session, update, exc)
            return None
        return turn

    async def _keep_failed(self, session: AsyncSession, update: Update, exc: Exception) -> None:
        log.error(
            "telegram update %s could not be handled; kept with its error",
            update.update_id,
            exc_info=exc,
        )
        await session.execute(
            sa_update(TelegramUpdate)
            .where(TelegramUpdate.update_id == update.update_id)
            .values(
                error=redact(f"{type(exc).__name__}: {exc}")[:2000],
                raw=update.model_dump(mode="json", exclude_none=True),
            )
        )

    def _after_commit(self, turns: list[Turn]) -> None:
        for turn in turns:
            for event in turn.events:
                self.bus.publish(event)
            for action in turn.after_commit:
                task = asyncio.get_running_loop().create_task(self._quietly(action))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        if any(turn.replies for turn in turns):
            self.on_replies()

    @staticmethod
    async def _quietly(action: Callable[[], object]) -> None:
        try:
            await action()  # type: ignore[misc]
        except Exception as exc:
            log.warning("telegram after-commit action failed: %s", redact(str(exc)))

    async def drain(self) -> None:
        """Wait for after-commit work (button answers, file downloads)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def forget_old(self) -> int:
        """Drop remembered update ids older than ``KEEP_SEEN`` (failed ones stay)."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(TelegramUpdate).where(
                    TelegramUpdate.received_at < self.now() - KEEP_SEEN,
                    TelegramUpdate.error == "",
                )
            )
        return result.rowcount or 0
