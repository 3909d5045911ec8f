"""Signing in and out, and switching accounts off: database work with no web imports.

Candidates for ``callcenter.domain.users`` once the web layer settles.
"""

from __future__ import annotations

import asyncio
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain import audit
from callcenter.models import User
from callcenter.passwords import hash_password, verify_password


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


async def check_password(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with this name and password, or None.

    An unknown name costs the same Argon2 work as a wrong password, so timing does not reveal
    which accounts exist. Hashing runs in a thread to keep the event loop free.
    """
    user = await session.scalar(
        select(User).where(func.lower(User.username) == username.strip().lower())
    )
    stored = user.password_hash if user is not None and user.active else _dummy_hash()
    ok = await asyncio.to_thread(verify_password, stored, password)
    return user if ok and user is not None and user.active else None


async def end_all_sessions(session: AsyncSession, user: User, actor: User) -> None:
    """Invalidate every cookie the user holds, on every device."""
    user.session_epoch += 1
    audit.record(
        session, "user.logout_everywhere", actor=actor, target_type="user", target_id=user.id
    )


async def set_active(session: AsyncSession, user: User, active: bool, actor: User) -> None:
    user.active = active
    user.session_epoch += 1
    audit.record(
        session,
        "user.activate" if active else "user.deactivate",
        actor=actor,
        target_type="user",
        target_id=user.id,
        details={"username": user.username},
    )
