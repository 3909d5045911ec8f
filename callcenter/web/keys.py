"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.config import Settings
from callcenter.dashboard.control import TelephonyControl
from callcenter.dashboard.dialer import ClickToCall
from callcenter.dashboard.wallboard import Wallboard
from callcenter.health import HealthRegistry
from callcenter.web.cookies import SessionCodec
from callcenter.web.presence import Presence
from callcenter.web.ratelimit import LoginLimiter
from callcenter.web.streams import Hub

ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
SETTINGS = web.AppKey("settings", Settings)
CODEC = web.AppKey("session_codec", SessionCodec)
LIMITER = web.AppKey("login_limiter", LoginLimiter)
HUB = web.AppKey("event_hub", Hub)
PRESENCE = web.AppKey("presence", Presence)
"""Streams open in every web process (serve); absent, the hub's own are all there are."""
HEALTH = web.AppKey("health", HealthRegistry)
WALLBOARD = web.AppKey("wallboard", Wallboard)
CONTROL = web.AppKey("telephony_control", TelephonyControl)
CLICK_TO_CALL = web.AppKey("click_to_call", ClickToCall)
BUS = web.AppKey("bus", Bus)
"""Domain events the pages cause (an agent's reply, a solved ticket), published after commit."""
