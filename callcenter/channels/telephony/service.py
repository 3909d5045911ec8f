"""Wiring the telephony side: AMI events into the live state, its domain events onto the bus.

After every (re)login the state is rebuilt from QueueStatus and CoreShowChannels, so what the
dashboard shows equals Asterisk's truth even after events were lost in an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import health
from callcenter.bus import Bus
from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.amiframes import AmiEvent
from callcenter.channels.telephony.cdrlog import CdrLog, cdr_log_of
from callcenter.channels.telephony.pbxconfig import WRAPUP_GLOBAL
from callcenter.channels.telephony.queueconf import settings_of
from callcenter.channels.telephony.queuelog import QueueLog, queue_log_of
from callcenter.channels.telephony.records import CallRecorder
from callcenter.channels.telephony.servers import AmiServer
from callcenter.channels.telephony.state import LiveState, QueueSettings
from callcenter.config import Settings
from callcenter.models import Queue, utcnow

log = logging.getLogger(__name__)

RESYNC_ACTIONS = ({"Action": "QueueStatus"}, {"Action": "CoreShowChannels"})


async def queue_settings(sessions: async_sessionmaker[AsyncSession]) -> dict[str, QueueSettings]:
    """Service-level thresholds per queue from the queues table."""
    async with sessions() as session:
        rows = await session.scalars(select(Queue))
        return {q.name: settings_of(q) for q in rows}


class TelephonyService:
    """Owns the AMI connection, the live state and the call recorder."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        queues: dict[str, QueueSettings] | None = None,
        now: Callable[[], datetime] = utcnow,
        server: AmiServer | None = None,
    ) -> None:
        """``queues``: per-queue service-level settings from the queues table; ``server``:
        one of several (servers.py), else the settings' ami_host."""
        self.bus = bus
        self.now = now
        self.state = LiveState(tz=ZoneInfo(settings.timezone), settings=queues)
        self.recorder = CallRecorder(sessions, region=settings.default_region)
        self.recorder.subscribe(bus)
        server = server or AmiServer(
            "", settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_password
        )
        self.server = server
        self.queue_log = queue_log_of(settings, server.name)
        self.cdr_log = cdr_log_of(settings, server.name)
        self._recovery: asyncio.Task[None] | None = None
        self.resyncs = 0  # completed rebuilds of the state from Asterisk, one per login
        self.ami = AmiClient(
            server.host, server.port, server.user, server.password, on_login=self._resync
        )
        self.ami.add_listener(self._on_event, events=self.state.handled_events)

    def _apply(self, headers: dict[str, str]) -> None:
        for event in self.state.apply(headers, self.now()):
            self.bus.publish(event)

    def _on_event(self, event: AmiEvent) -> None:
        self._apply(event.headers)

    async def _resync(self, client: AmiClient) -> None:
        if self.server.name:  # one of several: call ids must not collide with another's
            core = await client.send_action({"Action": "CoreSettings"}, timeout=15)
            if not core.headers.get("SystemName"):
                log.error(
                    "Asterisk %s has no systemname in asterisk.conf: its call ids may equal "
                    "another server's, and a call with a taken id is not recorded",
                    self.server.name,
                )
        # Asterisk reports no queue's wrapuptime over AMI; the dialplan global beside it does.
        wrapup = await client.send_action(
            {"Action": "Getvar", "Variable": WRAPUP_GLOBAL}, timeout=15, as_list=False
        )
        seconds = str(wrapup.headers.get("Value") or "") if wrapup.ok else ""
        self.state.wrapup_seconds = int(seconds) if seconds.isdigit() else 0
        self.state.resync_begin()
        members: dict[str, str] = {}  # queue_log names members; records name interfaces
        for action in RESYNC_ACTIONS:
            response = await client.send_action(action, timeout=15)
            for headers in response.events:
                self._apply(headers)
                if headers.get("Event") == "QueueMember" and headers.get("Name"):
                    interface = headers.get("Location") or headers.get("StateInterface", "")
                    members[headers["Name"]] = interface
        self.resyncs += 1
        health.report_ok(self.server.health_name)
        logs = [s for s in (self.queue_log, self.cdr_log) if s is not None]
        if logs and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.create_task(self._recover(logs, members))
        log.info("live state resynchronised from Asterisk (%s)", self.server.health_name)

    async def _recover(self, logs: list[QueueLog | CdrLog], members: dict[str, str]) -> None:
        """Calls that ended while disconnected: queue calls from queue_log first, then the
        other inbound calls from the CDR (which leaves queue calls to queue_log)."""
        for source in logs:
            await self.recorder.recover(source, members)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, keep the state current and ticking, and record calls until ``stop``."""
        self.recorder.start()
        try:
            await self.ami.start(timeout=30)
            while not stop.is_set():
                for event in self.state.tick(self.now()):
                    self.bus.publish(event)
                if self.ami.connected:
                    health.report_ok(self.server.health_name)
                else:
                    health.report_failure(
                        self.server.health_name, "not connected to the Asterisk Manager Interface"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await self.ami.stop()
            if self._recovery is not None:
                self._recovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._recovery
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recorder.drain(), 5.0)
            await self.recorder.stop()
