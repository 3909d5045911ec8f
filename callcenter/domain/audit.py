"""Writing the audit log: who did what to which record, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import AuditLog, User


def record(
    session: AsyncSession,
    action: str,
    *,
    actor: User | None = None,
    actor_name: str = "",
    target_type: str = "",
    target_id: object = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit entry to the session's transaction (it commits or rolls back with it)."""
    entry = AuditLog(
        action=action,
        actor_id=actor.id if actor else None,
        actor=actor.username if actor else actor_name or "system",
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )
    session.add(entry)
    return entry
