"""The admins' pattern dictionary in the database: read, save (validated, audited), reset."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.classify.models import DICTIONARY_ROW, ClassifierDictionary
from callcenter.classify.patterns import LANGUAGES, compile_patterns, default_patterns
from callcenter.domain import audit
from callcenter.models import User, utcnow

AUDIT_TARGET = "classifier_dictionary"


async def stored_version(session: AsyncSession) -> int:
    """The version of the stored dictionary; 0 when nobody ever saved one."""
    version = await session.scalar(
        select(ClassifierDictionary.version).where(ClassifierDictionary.id == DICTIONARY_ROW)
    )
    return version or 0


async def load_dictionary(session: AsyncSession) -> tuple[int, dict[str, Any]]:
    """(version, dictionary in use): the admins' one, or a copy of the shipped one."""
    row = await session.get(ClassifierDictionary, DICTIONARY_ROW)
    if row is None or row.patterns is None:
        return (row.version if row else 0), default_patterns()
    return row.version, row.patterns


def _entries(data: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(where, language, text) of every pattern and negation template."""
    found = set()
    for name, table in data.get("intents", {}).items():
        for language in LANGUAGES:
            found.update((f"intents.{name}", language, text) for text in table.get(language, ()))
    negation = data.get("negation", {})
    for language in LANGUAGES:
        found.update(("negation", language, text) for text in negation.get(language, ()))
    return found


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What an edit did, for the audit log."""
    old, new = _entries(before), _entries(after)
    old_intents, new_intents = set(before.get("intents", {})), set(after.get("intents", {}))

    def listed(entries: set[tuple[str, str, str]]) -> list[str]:
        return [f"{where}.{language}: {text}" for where, language, text in sorted(entries)]

    details: dict[str, Any] = {
        "intents_added": sorted(new_intents - old_intents),
        "intents_removed": sorted(old_intents - new_intents),
        "patterns_added": listed(new - old),
        "patterns_removed": listed(old - new),
    }
    for key in ("max_gap",):
        if before.get(key) != after.get(key):
            details[key] = {"from": before.get(key), "to": after.get(key)}
    return {key: value for key, value in details.items() if value}


async def _store(
    session: AsyncSession, patterns: dict[str, Any] | None, actor: User | None
) -> ClassifierDictionary:
    row = await session.get(ClassifierDictionary, DICTIONARY_ROW, with_for_update=True)
    if row is None:
        row = ClassifierDictionary(id=DICTIONARY_ROW, version=0)
        session.add(row)
    row.version += 1
    row.patterns = patterns
    row.updated_at = utcnow()
    row.updated_by = actor.username if actor else "system"
    await session.flush()
    return row


async def save_dictionary(
    session: AsyncSession, patterns: dict[str, Any], *, actor: User | None
) -> int:
    """Validate and store the dictionary; returns its new version. PatternError: nothing saved."""
    compile_patterns(patterns)
    _, before = await load_dictionary(session)
    row = await _store(session, patterns, actor)
    details = {"version": row.version, **describe_change(before, patterns)}
    audit.record(
        session, "classifier.update", actor=actor, target_type=AUDIT_TARGET, details=details
    )
    return row.version


async def reset_dictionary(session: AsyncSession, *, actor: User | None) -> int:
    """Go back to the shipped dictionary; returns the new version."""
    _, before = await load_dictionary(session)
    row = await _store(session, None, actor)
    details = {"version": row.version, **describe_change(before, default_patterns())}
    audit.record(
        session, "classifier.reset", actor=actor, target_type=AUDIT_TARGET, details=details
    )
    return row.version
