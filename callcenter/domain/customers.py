"""Customer profiles: find by any identity, attach identities, create, merge."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.dirty import mark_customers
from callcenter.domain import audit
from callcenter.domain.errors import AlreadyMerged, DuplicateIdentity, NotFound, SelfMerge
from callcenter.domain.identity import normalize
from callcenter.models import (
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    OrderRef,
    SuggestionStatus,
    Ticket,
    User,
)


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    """The live profile with this id, following merges; NotFound when there is none."""
    customer = await session.get(Customer, customer_id)
    seen: set[int] = set()
    while customer is not None and customer.merged_into_id is not None:
        if customer.id in seen:
            raise NotFound(f"customer {customer_id} is in a merge cycle")
        seen.add(customer.id)
        customer = await session.get(Customer, customer.merged_into_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    return customer


async def find_identity(
    session: AsyncSession, kind: IdentityKind, raw: str | int, region: str = "RU"
) -> Identity | None:
    value = normalize(kind, raw, region)
    return await session.scalar(
        select(Identity).where(Identity.kind == kind, Identity.value == value)
    )


async def find_customer(
    session: AsyncSession, kind: IdentityKind, raw: str | int, region: str = "RU"
) -> Customer | None:
    """The customer owning this phone, email or Telegram id, or None."""
    identity = await find_identity(session, kind, raw, region)
    return None if identity is None else await get_customer(session, identity.customer_id)


async def create_customer(
    session: AsyncSession, display_name: str = "", language: str = "ru"
) -> Customer:
    customer = Customer(display_name=display_name.strip()[:200], language=language)
    session.add(customer)
    await session.flush()
    return customer


async def attach_identity(
    session: AsyncSession,
    customer: Customer,
    kind: IdentityKind,
    raw: str | int,
    *,
    source: str = "",
    verified: bool = False,
    display: str = "",
    region: str = "RU",
) -> Identity:
    """Give ``customer`` a new identity; idempotent, refused if another customer owns it."""
    value = normalize(kind, raw, region)
    existing = await session.scalar(
        select(Identity).where(Identity.kind == kind, Identity.value == value)
    )
    if existing is not None:
        if existing.customer_id != customer.id:
            raise DuplicateIdentity(
                f"{kind.value} {value} already belongs to customer {existing.customer_id}"
            )
        return existing
    identity = Identity(
        customer_id=customer.id,
        kind=kind,
        value=value,
        display=(display or str(raw)).strip()[:320],
        verified=verified,
        source=source,
    )
    try:
        async with session.begin_nested():
            session.add(identity)
    except IntegrityError:
        raise DuplicateIdentity(
            f"{kind.value} {value} was just taken by another customer"
        ) from None
    return identity


async def resolve_customer(
    session: AsyncSession,
    kind: IdentityKind,
    raw: str | int,
    *,
    display_name: str = "",
    source: str = "",
    language: str = "ru",
    region: str = "RU",
) -> tuple[Customer, bool]:
    """Find the customer by identity or create one; returns (customer, created).

    Safe against a concurrent creator: if another transaction inserts the same identity first,
    the savepoint is rolled back and that customer is returned.
    """
    found = await find_customer(session, kind, raw, region)
    if found is not None:
        return found, False
    value = normalize(kind, raw, region)
    try:
        async with session.begin_nested():
            customer = await create_customer(session, display_name, language)
            session.add(
                Identity(
                    customer_id=customer.id,
                    kind=kind,
                    value=value,
                    display=str(raw).strip()[:320],
                    source=source,
                )
            )
    except IntegrityError:
        found = await find_customer(session, kind, raw, region)
        if found is None:
            raise
        return found, False
    return customer, True


async def merge_customers(
    session: AsyncSession,
    source_id: int,
    target_id: int,
    *,
    actor: User | None = None,
    actor_name: str = "",
) -> Customer:
    """Move everything of ``source`` onto ``target``; ``source`` stays, pointing at ``target``."""
    if source_id == target_id:
        raise SelfMerge("a customer cannot be merged into itself")
    source = await session.get(Customer, source_id)
    target = await session.get(Customer, target_id)
    if source is None or target is None:
        raise NotFound(f"no customer with id {source_id if source is None else target_id}")
    for customer in (source, target):
        if customer.merged_into_id is not None:
            raise AlreadyMerged(
                f"customer {customer.id} was already merged into {customer.merged_into_id}"
            )

    for model in (Identity, Ticket, Interaction, OrderRef):
        await session.execute(
            update(model).where(model.customer_id == source_id).values(customer_id=target_id)
        )
    await session.execute(
        update(MergeSuggestion)
        .where(
            (
                (MergeSuggestion.customer_id == source_id)
                & (MergeSuggestion.other_customer_id == target_id)
            )
            | (
                (MergeSuggestion.customer_id == target_id)
                & (MergeSuggestion.other_customer_id == source_id)
            )
        )
        .values(status=SuggestionStatus.ACCEPTED)
    )
    if not target.display_name:
        target.display_name = source.display_name
    if source.notes:
        target.notes = "\n".join(filter(None, [target.notes, source.notes]))
    target.tags = sorted(set(target.tags) | set(source.tags))
    source.merged_into_id = target_id
    await mark_customers(session, [target_id])
    audit.record(
        session,
        "customer.merge",
        actor=actor,
        actor_name=actor_name,
        target_type="customer",
        target_id=target_id,
        details={"source_id": source_id, "target_id": target_id},
    )
    await session.flush()
    return target
