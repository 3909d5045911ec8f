"""/status for Telegram: getUpdates failing (refused token, server errors) and ok again."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from callcenter import health
from callcenter.health import State
from tests.telegram.conftest import Harness


def telegram() -> health.ComponentHealth:
    return next(c for c in health.registry.snapshot() if c.name == "telegram")


@pytest.mark.parametrize(
    ("status", "error", "shown"),
    [(401, TelegramUnauthorizedError, "Unauthorized"), (502, TelegramAPIError, "Bad Gateway")],
)
async def test_polling_failures_show_until_getupdates_works_again(
    harness: Harness, status: int, error: type[Exception], shown: str
) -> None:
    harness.api.fail_next("getUpdates", status)
    with pytest.raises(error):
        await harness.poll()
    failing = telegram()
    assert failing.state is State.FAILING
    assert shown in failing.last_error
    assert harness.api.token not in failing.last_error

    await harness.poll()
    assert telegram().state is State.OK
