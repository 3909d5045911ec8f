"""Wiring the automation into a running server: the engine on the bus, the timer worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.actions import AutomationConfig
from callcenter.automation.business_hours import parse_hours
from callcenter.automation.engine import Engine
from callcenter.automation.surveys import SurveySigner
from callcenter.automation.timers import TimerWorker
from callcenter.bus import Bus
from callcenter.config import ConfigError, Settings
from callcenter.models import utcnow

log = logging.getLogger(__name__)


def automation_config(settings: Settings) -> AutomationConfig:
    """The automation's part of the settings, checked."""
    try:
        hours = parse_hours(settings.business_hours, settings.timezone)
        signer = SurveySigner(settings.session_key)
    except ValueError as exc:
        raise ConfigError(f"automation: {exc}") from None
    public_url = settings.public_url or f"http://{settings.web_host}:{settings.web_port}"
    return AutomationConfig(
        hours, signer, public_url, emails_per_hour=settings.auto_emails_per_hour
    )


async def run_automation(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    stop: asyncio.Event,
    now: Callable[[], datetime] = utcnow,
) -> None:
    """Apply the rules to bus events and fire due timers until ``stop`` is set."""
    engine = Engine(sessions, automation_config(settings), now=now)
    unsubscribe = engine.subscribe(bus)
    log.info("automation started")
    try:
        await TimerWorker(sessions, engine.timer_handlers, now=now).run(stop)
    finally:
        unsubscribe()
