from aiohttp.test_utils import TestClient, TestServer

from callcenter.config import Settings
from callcenter.web.app import create_app


async def test_healthz_answers_without_auth_and_without_details(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, session_key="k" * 40))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_healthz_says_failing_when_the_database_is_gone() -> None:
    app = create_app(
        Settings(
            database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", session_key="k" * 40
        )
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body == {"status": "failing"}
