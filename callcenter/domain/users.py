"""Staff accounts: agents, supervisors and admins."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain import audit
from callcenter.domain.errors import DomainError
from callcenter.models import Role, User
from callcenter.passwords import hash_password

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_ENDPOINT = re.compile(r"PJSIP/[A-Za-z0-9_-]{1,40}")


class InvalidUser(DomainError):
    code = "invalid-user"


async def add_user(
    session: AsyncSession,
    username: str,
    role: Role,
    password: str,
    *,
    endpoint: str | None = None,
    display_name: str = "",
    language: str = "ru",
    actor_name: str = "cli",
) -> User:
    """Create a staff account; refused with InvalidUser when a field is unusable or taken."""
    if not _USERNAME.fullmatch(username):
        raise InvalidUser(
            f"username {username!r} must be 2-64 lower-case letters, digits, '.', '_' or '-'"
        )
    if endpoint is not None and not _ENDPOINT.fullmatch(endpoint):
        raise InvalidUser(f"endpoint {endpoint!r} must look like PJSIP/1001")
    if await session.scalar(select(User).where(User.username == username)):
        raise InvalidUser(f"user {username!r} already exists")
    if endpoint and await session.scalar(select(User).where(User.sip_endpoint == endpoint)):
        raise InvalidUser(f"endpoint {endpoint} is already assigned to another user")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidUser(str(exc)) from None
    user = User(
        username=username,
        role=role,
        password_hash=password_hash,
        sip_endpoint=endpoint,
        display_name=display_name or username,
        language=language,
    )
    session.add(user)
    await session.flush()
    audit.record(
        session,
        "user.create",
        actor_name=actor_name,
        target_type="user",
        target_id=user.id,
        details={"username": username, "role": role.value, "endpoint": endpoint},
    )
    return user
