"""The agent's customer search, over HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.web.seeding import customer_with_history


@pytest.fixture
async def people(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as db, db.begin():
        ivan = await customer_with_history(db)
        maria = await customer_with_history(
            db,
            "Мария Сидорова",
            phone="+79031112233",
            email="maria@example.com",
            telegram=(987654321, "@masha_s"),
            order="778899",
        )
        percent = await customer_with_history(
            db,
            "100% Скидки_ООО",
            phone="+74951234567",
            email="sale@example.org",
            telegram=(555, "@sale_bot_user"),
            order="4455",
        )
    return {"ivan": ivan.id, "maria": maria.id, "percent": percent.id}


async def _found(agent, query: str) -> list[int]:
    response = await agent.get("/agent", params={"q": query})
    assert response.status == 200, query
    html = await response.text()
    return [int(part.split('"')[0]) for part in html.split('href="/customers/')[1:]]


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("Иван", "ivan"),
        ("иван петров", "ivan"),
        ("ПЕТРОВ", "ivan"),
        ("8 (916) 123-45-67", "ivan"),
        ("+7 916 123 45 67", "ivan"),
        ("9161234567", "ivan"),
        ("IVAN.Petrov@Example.RU", "ivan"),
        ("@masha_s", "maria"),
        ("masha_s", "maria"),
        ("778899", "maria"),
        ("№778899", "maria"),
        ("987654321", "maria"),
    ],
)
async def test_an_agent_finds_a_customer_by_any_handle(signed_in, people, query, who) -> None:
    agent = await signed_in("anna")
    assert (await _found(agent, query))[:1] == [people[who]]


@pytest.mark.parametrize(
    "query",
    [
        "' OR '1'='1",
        "'; DROP TABLE customers; --",
        '" OR 1=1 --',
        "%",
        "_",
        "\\",
        "%%%_",
        "Иван' --",
        "1; SELECT * FROM users",
        "\x00",
    ],
)
async def test_sql_metacharacters_are_just_text(signed_in, people, query) -> None:
    agent = await signed_in("anna")
    found = await _found(agent, query)
    assert len(found) < 3, f"{query!r} matched everyone"
    # and the data is still there
    assert await _found(agent, "Мария") == [people["maria"]]


async def test_wildcards_match_themselves(signed_in, people) -> None:
    agent = await signed_in("anna")
    assert await _found(agent, "100%") == [people["percent"]]
    assert await _found(agent, "и_ан") == []


async def test_nothing_found_says_so(signed_in, people) -> None:
    agent = await signed_in("anna")
    html = await (await agent.get("/agent", params={"q": "Зинаида"})).text()
    assert "Никого не нашлось" in html
