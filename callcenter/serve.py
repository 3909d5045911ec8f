"""``callcenter serve``: the web app, telephony, screen-pops, channel workers, automation and
the outbox in one process, sharing one database engine, one event bus and one event hub."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from callcenter.analytics.refresh import Refresher
from callcenter.automation import run_automation
from callcenter.automation.callback_watch import NewCallbacks
from callcenter.automation.callbacks import CallbackPolicy
from callcenter.automation.calls import bridge_calls
from callcenter.automation.webhook import WebhookSender
from callcenter.bus import Bus
from callcenter.channels.email.worker import email_sender, run_email_worker
from callcenter.channels.telegram.worker import TelegramChannel
from callcenter.channels.telephony.dialler import (
    CallbackDialler,
    EveryServer,
    ari_urls,
    customer_dial,
    dialled_by,
)
from callcenter.channels.telephony.fastagi import run_agi_server
from callcenter.channels.telephony.queueconf import (
    LiveQueueSettings,
    QueueApplier,
    ReapplyAtLogin,
)
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.channels.telephony.servers import (
    SideBySide,
    ami_servers,
    held_elsewhere,
    server_bus,
)
from callcenter.channels.telephony.service import TelephonyService, queue_settings
from callcenter.channels.telephony.stasis import run_ari_app
from callcenter.classify.live import LiveDictionary
from callcenter.config import Settings
from callcenter.crm.catchup import CatchUp
from callcenter.crm.feed import Feed
from callcenter.crm.sender import CrmSender
from callcenter.crm.setup import connector as crm_connector
from callcenter.crm.setup import lookup as crm_lookup
from callcenter.crm.setup import recording_links
from callcenter.crm.webhooks import SignedWebhookSender
from callcenter.dashboard.board import Policy
from callcenter.dashboard.control import AmiControl, RoutedControl, TelephonyControl
from callcenter.dashboard.dialer import BusClickToCall
from callcenter.dashboard.wallboard import LiveFigures, Wallboard
from callcenter.dashboard.watch import BacklogWatch
from callcenter.db import create_engine, session_factory
from callcenter.health_probe import database_probe
from callcenter.outbox import OutboxWorker, Sender
from callcenter.pgnotify import PgNotify, asyncpg_dsn
from callcenter.runtime import Component, run_all
from callcenter.screenpop.service import ScreenPopService
from callcenter.web.app import create_app
from callcenter.web.fanout import Fanout, close_inactive
from callcenter.web.keys import CLICK_TO_CALL, CONTROL, PRESENCE, WALLBOARD
from callcenter.web.presence import KIND as PRESENCE_KIND
from callcenter.web.presence import Presence
from callcenter.web.streams import Hub
from callcenter.web.views.callbacks import push_callback_changes
from callcenter.web.views.queues_admin import LIVE_QUEUES, QUEUE_APPLIER, QUEUE_NUMBERS

log = logging.getLogger(__name__)


def web_component(app: web.Application, host: str, port: int) -> Component:
    async def run_site(stop: asyncio.Event) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            log.info("web app on http://%s:%s", host, port)
            await stop.wait()
        finally:
            await runner.cleanup()

    return Component("web", run_site)


async def serve(settings: Settings, host: str, port: int, stop: asyncio.Event) -> None:
    """Run everything that is configured until ``stop`` is set."""
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    bus, hub = Bus(), Hub()
    app = create_app(settings, engine=engine, hub=hub, bus=bus)
    bridge_calls(bus)  # stored calls trigger the call rules (summary, abandoned-call callback)
    push_callback_changes(bus, hub)  # the live callback list
    servers = ami_servers(settings)
    app[PRESENCE] = presence = Presence(hub, telephony=bool(servers))

    async with aiohttp.ClientSession() as http:
        crm = crm_connector(settings, http)
        ScreenPopService(
            sessions,
            presence.publish_to_user,  # delivered: the agent's streams in every web process
            region=settings.default_region,
            crm=crm_lookup(settings, crm) if crm is not None else None,
        ).subscribe(bus)
        feed = Feed(sessions, crm=crm is not None, links=recording_links(settings))
        feed.subscribe(bus)
        senders: list[Sender] = [WebhookSender(http), SignedWebhookSender(http, sessions)]
        if crm is not None:
            senders.append(CrmSender(crm, sessions))
        numbers = QueueNumbers(sessions)  # the lookup's, reloaded by /admin/queues on a save
        app[QUEUE_NUMBERS] = numbers
        components = [
            web_component(app, host, port),
            Component("automation", functools.partial(run_automation, settings, sessions, bus)),
            Component(
                "fastagi", functools.partial(run_agi_server, settings, sessions, numbers=numbers)
            ),
            Component("classifier", LiveDictionary(sessions).run),
            database_probe(engine),
            Component("analytics", Refresher(sessions, settings.timezone).run),
            Component("crm-feed", CatchUp(sessions, feed).run),
            Component("new-callbacks", NewCallbacks(sessions, bus).run),
            Component("presence", presence.run),
        ]
        if engine.dialect.name == "postgresql":  # several web processes may share it

            async def resynced() -> None:
                await close_inactive(hub, sessions)
                presence.announce()

            fanout = Fanout(hub, resynced)
            fanout.on(PRESENCE_KIND, presence.receive)
            presence.attach(fanout.outgoing)
            dsn = asyncpg_dsn(settings.resolved_database_url)
            notify = PgNotify(dsn, fanout.incoming, fanout.resynced)
            fanout.attach(notify.send)
            components.append(Component("fanout", notify.run))
        if servers:
            queues = await queue_settings(sessions)
            several = len(servers) > 1
            services = [
                TelephonyService(
                    settings, sessions, server_bus(bus) if several else bus, queues=queues, server=s
                )
                for s in servers
            ]
            states = {t.server.name: t.state for t in services}
            figures: LiveFigures = services[0].state
            control: TelephonyControl = AmiControl(services[0].ami)
            if several:  # queues side by side; each action goes to the agent's own server
                figures = SideBySide(states)
                controls = {t.server.name: AmiControl(t.ami) for t in services}
                control = RoutedControl(controls, states)
            app[CONTROL] = control
            app[LIVE_QUEUES] = LiveQueueSettings([t.state for t in services])
            if settings.queues_config_path:  # every server reads the same file
                path = Path(settings.queues_config_path)
                applier = QueueApplier(path, [t.ami for t in services])
                app[QUEUE_APPLIER] = applier
                reapply = ReapplyAtLogin(sessions, applier, [t.ami for t in services])
                components.append(Component("queues-apply", reapply.run))
            for service in services:
                name = f"telephony:{service.server.name}" if several else "telephony"
                health_name = service.server.health_name
                components.append(Component(name, service.run, health_name=health_name))
        else:
            log.warning("CALLCENTER_AMI_PASSWORD is not set: telephony is off")
            figures = SideBySide({})  # the omnichannel tiles alone
        policy = Policy.from_settings(settings)
        publish = hub.publish_to_role if servers else presence.publish_board
        wallboard = Wallboard(figures, publish, policy=policy)
        wallboard.subscribe(bus)
        zone = ZoneInfo(settings.timezone)
        tiles = BacklogWatch(sessions, policy.answer_promise, wallboard.set_backlog, zone=zone)
        tiles.subscribe(bus)
        app[WALLBOARD] = wallboard
        components.append(Component("wallboard", wallboard.run))
        components.append(Component("wallboard-tiles", tiles.run))
        if settings.ari_password:
            customer_dial(settings)  # a bad dial string stops serve here, not the ARI app later
            urls = ari_urls(settings, [s.name for s in servers])
            states = {t.server.name: t.state for t in services} if servers else {}
            agents = EveryServer({name: states[name] for name in urls if name in states})
            for name, url in urls.items():  # several: each places its own agents' calls
                accepts = dialled_by(name, agents, next(iter(urls))) if len(urls) > 1 else None
                ari = functools.partial(
                    run_ari_app, settings, sessions, bus, url=url, accepts=accepts
                )
                label = f"ari:{name}" if len(urls) > 1 else "ari"
                components.append(Component(label, ari, health_name="ari"))
            elsewhere = held_elsewhere(states, urls) if len(servers) > 1 else None
            app[CLICK_TO_CALL] = BusClickToCall(bus, settings.default_region, elsewhere=elsewhere)
            if servers:  # callbacks go to agents free on the servers ARI dials through
                dialler = CallbackDialler(
                    sessions,
                    bus,
                    agents,
                    policy=CallbackPolicy.from_settings(settings),
                    region=settings.default_region,
                )
                components.append(Component("callbacks", dialler.run))
        telegram = None
        if settings.telegram_token:
            telegram = TelegramChannel(settings, sessions, bus)
            senders.append(telegram.sender)
            run_telegram = functools.partial(telegram.run, send=False)
            components.append(Component("telegram", run_telegram, health_name="telegram"))
        if settings.smtp_host:
            senders.append(email_sender(settings, sessions))
        if settings.imap_user:
            run_email = functools.partial(run_email_worker, settings, sessions, bus, send=False)
            components.append(Component("email", run_email, health_name="imap"))
        lease = timedelta(seconds=settings.outbox_lease_seconds)
        components.append(Component("outbox", OutboxWorker(sessions, senders, lease=lease).run))
        try:
            await run_all(components, stop)
        finally:
            if telegram is not None:
                await telegram.close()
            await engine.dispose()


def run(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, host, port, stop)

    asyncio.run(main())
