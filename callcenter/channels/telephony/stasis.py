"""The Stasis application ``callcenter``: routes ARI events to the survey and click-to-call.

A click-to-call that reached the customer's side is stored as an outbound call in their
history (once per Linkedid) and announced with ``CallRecorded``, like a stored inbound call,
and through the same durable path: the app's ``CallRecorder`` keeps the records in order while
the database is away and stores them when it is back.

Each running survey or click-to-call owns the channel ids it handles and gets their events
(playbacks included) through its own queue, in order. A channel entering Stasis that nobody
owns is a new survey (``Stasis(callcenter,survey,<linkedid>)``) or an orphan. After every
(re)registration, channels still in the app that no task owns (left over from before an
outage or a restart of this process) are hung up rather than kept waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.outbound_calls import ClickToCallEnded
from callcenter.bus import Bus
from callcenter.channels.telephony.ari import AriClient, AriError
from callcenter.channels.telephony.clicktocall import (
    TRUNK_DIAL,
    ClickToCall,
    ClickToCallRequested,
    ClickToCallTimings,
)
from callcenter.channels.telephony.dialler import customer_dial
from callcenter.channels.telephony.records import CallRecorder
from callcenter.channels.telephony.survey import (
    QUESTIONS,
    CallSurveyAnswered,
    Question,
    SurveyCall,
    SurveyTimings,
    linkedid_of,
    now,
    record_answer,
)
from callcenter.config import Settings
from callcenter.db import unit_of_work

log = logging.getLogger(__name__)

SURVEY_ARG = "survey"


def channel_of(event: dict[str, Any]) -> str | None:
    """The channel an event concerns (a playback's target channel included)."""
    channel = event.get("channel")
    if isinstance(channel, dict) and channel.get("id"):
        return str(channel["id"])
    target = str(event.get("playback", {}).get("target_uri", ""))
    return target.removeprefix("channel:") if target.startswith("channel:") else None


class StasisApp:
    def __init__(
        self,
        ari: AriClient,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus | None = None,
        *,
        questions: tuple[Question, ...] = QUESTIONS,
        survey_timings: SurveyTimings | None = None,
        customer_dial: str = TRUNK_DIAL,
        click_timings: ClickToCallTimings | None = None,
        region: str = "RU",
        recorder: CallRecorder | None = None,
    ) -> None:
        """``recorder``: stores the click-to-calls (default: the app's own, publishing
        CallRecorded on ``bus``)."""
        self.ari = ari
        self.sessions = sessions
        self.bus = bus
        self.questions = questions
        self.survey_timings = survey_timings
        self.customer_dial = customer_dial
        self.click_timings = click_timings
        self.region = region
        self.recorder = recorder or CallRecorder(sessions, region=region, bus=bus)
        self._recording = False
        self._routes: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        ari.on_event(self.handle)
        ari.on_connect(self.reap_orphans)

    async def handle(self, event: dict[str, Any]) -> None:
        channel_id = channel_of(event)
        if channel_id is None:
            return
        queue = self._routes.get(channel_id)
        if queue is not None:
            queue.put_nowait(event)
        elif event.get("type") == "StasisStart":
            args = [str(a) for a in event.get("args", [])]
            if args[:1] == [SURVEY_ARG]:
                self._start_survey(channel_id, linkedid_of(args, event["channel"]))
            else:
                log.warning("channel %s entered Stasis unexpectedly %s", channel_id, args)
                await self._hang_up(channel_id)

    def _own(
        self, channel_ids: Iterable[str], queue: asyncio.Queue[dict[str, Any]] | None = None
    ) -> asyncio.Queue[dict[str, Any]]:
        queue = asyncio.Queue() if queue is None else queue
        for channel_id in channel_ids:
            self._routes[channel_id] = queue
        return queue

    def _spawn(self, work: Coroutine[Any, Any, None], channel_ids: tuple[str, ...]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("Stasis task for %s failed", channel_ids)
            finally:
                for channel_id in channel_ids:
                    self._routes.pop(channel_id, None)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_survey(self, channel_id: str, linkedid: str) -> None:
        queue = self._own([channel_id])
        survey = SurveyCall(
            self.ari,
            channel_id,
            linkedid,
            queue,
            self._store,
            self.questions,
            self.survey_timings,
        )
        self._spawn(survey.run(), (channel_id,))

    async def _store(self, linkedid: str, question: str, score: int) -> None:
        at = now()
        async with unit_of_work(self.sessions) as session:
            answer, created = await record_answer(session, linkedid, question, score, at)
        if created and self.bus is not None:
            self.bus.publish(CallSurveyAnswered(answer.id, linkedid, question, score, at))

    async def click_to_call(self, request: ClickToCallRequested) -> None:
        """Run one click-to-call to its end (a bus handler for ClickToCallRequested)."""
        call = ClickToCall(
            self.ari,
            request,
            asyncio.Queue(),
            self.bus.publish if self.bus is not None else lambda _event: None,
            customer_dial=self.customer_dial,
            timings=self.click_timings,
            region=self.region,
            record=self.record_click_to_call,
        )
        self._own(call.channel_ids, call.events)
        try:
            await call.run()
        finally:
            for channel_id in call.channel_ids:
                self._routes.pop(channel_id, None)

    async def record_click_to_call(self, ended: ClickToCallEnded) -> None:
        """Hand an ended click-to-call to the recorder: it is stored once, in order, when the
        database can take it; this returns at once, even while the database is away."""
        if not self._recording:
            self.recorder.start()
            self._recording = True
        await self.recorder.record(ended)

    async def reap_orphans(self) -> None:
        """Hang up channels in this app that no task owns (after an outage or a restart)."""
        try:
            channels = await self.ari.request("GET", "channels")
        except AriError as exc:
            log.warning("could not list channels after registering: %s", exc)
            return
        for channel in channels or []:
            dialplan = channel.get("dialplan", {})
            in_app = dialplan.get("app_name") == "Stasis" and str(
                dialplan.get("app_data", "")
            ).startswith(f"{self.ari.app},")
            if in_app and channel.get("id") not in self._routes:
                log.info("hanging up orphaned Stasis channel %s", channel.get("name"))
                await self._hang_up(str(channel["id"]))

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ari.request("DELETE", f"channels/{channel_id}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._recording:
            await self.recorder.stop()
            self._recording = False


async def run_ari_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    stop: asyncio.Event,
    *,
    url: str | None = None,
    accepts: Callable[[ClickToCallRequested], bool] | None = None,
) -> None:
    """Keep the Stasis app registered (across Asterisk restarts) until ``stop`` is set.

    ``url``: this server's ARI (default ari_url); ``accepts``: the click-to-calls it places
    when several servers' apps share the bus (default all)."""
    ari = AriClient(
        url or settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app
    )
    app = StasisApp(
        ari, sessions, bus, customer_dial=customer_dial(settings), region=settings.default_region
    )

    async def click_to_call(request: ClickToCallRequested) -> None:
        if accepts is None or accepts(request):
            await app.click_to_call(request)

    bus.subscribe(ClickToCallRequested, click_to_call)
    await ari.start(timeout=None)
    try:
        await stop.wait()
    finally:
        await app.close()
        await ari.stop()
