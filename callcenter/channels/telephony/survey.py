"""The post-call phone survey: questions answered with the keypad, stored against the call.

The dialplan sends a caller whose agent hung up first to ``Stasis(callcenter,survey,
<linkedid>)``. Each question plays its prompt and collects digits (barge-in: the first
digit stops the prompt). A score of several digits ends with ``#``, with a pause, or as soon
as no further digit could make a valid score (``1`` waits for a possible ``0`` on a 0-10
scale, ``7`` does not); ``*`` starts the answer again. A wrong answer is asked again once,
then the question is skipped. Each answer is stored as soon as it is given, so a caller who
hangs up halfway keeps the first answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telephony.ari import AriClient, AriError
from callcenter.channels.telephony.models import CallSurvey

log = logging.getLogger(__name__)

_LINKEDID = re.compile(r"[0-9A-Za-z._-]{1,64}")
GONE_EVENTS = frozenset({"StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"})


@dataclass(frozen=True)
class Question:
    name: str
    low: int
    high: int
    prompt: str
    """Media URI; ``sound:custom/...`` files are recorded per deployment (agi/README.md)."""


QUESTIONS = (
    Question("nps", 0, 10, "sound:custom/cc-survey-nps"),
    Question("csat", 1, 5, "sound:custom/cc-survey-csat"),
)


@dataclass(frozen=True)
class SurveyTimings:
    first_digit: float = 10.0
    next_digit: float = 2.0
    attempts: int = 2
    goodbye: float = 5.0


@dataclass(frozen=True)
class CallSurveyAnswered:
    """Published on the bus once per stored answer."""

    answer_id: int
    linkedid: str
    question: str
    score: int
    at: datetime


class InvalidEntry(ValueError):
    """The digits do not make a score on this question's scale."""


class DigitCollector:
    """Turns keypad digits into a score on ``low..high`` (pure; the caller keeps time)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.digits = ""

    def _could_grow(self) -> bool:
        return any(
            str(v).startswith(self.digits) and len(str(v)) > len(self.digits)
            for v in range(self.low, self.high + 1)
        )

    def feed(self, key: str) -> int | None:
        """The score once complete, None while more digits may follow; InvalidEntry if wrong."""
        if key == "*":
            self.digits = ""
            return None
        if key == "#":
            return self.finish()
        if not key.isdigit() or len(key) != 1:
            raise InvalidEntry(f"key {key!r}")
        self.digits += key
        return None if self._could_grow() else self.finish()

    def finish(self) -> int:
        """The score of what was entered so far (after a pause, or ``#``)."""
        if not self.digits:
            raise InvalidEntry("nothing entered")
        value = int(self.digits)
        if not self.low <= value <= self.high or self.digits != str(value):
            raise InvalidEntry(f"{self.digits} is not in {self.low}-{self.high}")
        return value


async def record_answer(
    session: AsyncSession, linkedid: str, question: str, score: int, at: datetime
) -> tuple[CallSurvey, bool]:
    """Store one answer; the first answer to a question of a call is kept (returns created)."""
    if not _LINKEDID.fullmatch(linkedid):
        raise ValueError(f"not a Linkedid: {linkedid!r}")
    query = select(CallSurvey).where(
        CallSurvey.linkedid == linkedid, CallSurvey.question == question
    )
    existing = await session.scalar(query)
    if existing is not None:
        return existing, False
    answer = CallSurvey(linkedid=linkedid, question=question, score=score, answered_at=at)
    try:
        async with session.begin_nested():
            session.add(answer)
    except IntegrityError:
        existing = await session.scalar(query)
        if existing is None:
            raise
        return existing, False
    return answer, True


class ChannelGone(Exception):
    """The caller hung up."""


Store = Callable[[str, str, int], Awaitable[None]]


class SurveyCall:
    """One caller taking the survey; ``events`` receives this channel's ARI events."""

    def __init__(
        self,
        ari: AriClient,
        channel_id: str,
        linkedid: str,
        events: asyncio.Queue[dict[str, Any]],
        store: Store,
        questions: tuple[Question, ...] = QUESTIONS,
        timings: SurveyTimings | None = None,
    ) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.linkedid = linkedid
        self.events = events
        self.store = store
        self.questions = questions
        self.timings = timings or SurveyTimings()

    async def run(self) -> None:
        """Ask every question, then thank the caller and hang up (whatever happened)."""
        try:
            for question in self.questions:
                score = await self._ask(question)
                if score is None:
                    log.info("survey %s: no answer to %s", self.linkedid, question.name)
                    continue
                try:
                    await self.store(self.linkedid, question.name, score)
                except Exception:  # keep the caller's experience; the log has the answer
                    log.exception(
                        "survey %s: could not store %s=%s", self.linkedid, question.name, score
                    )
            await self._play_to_end("sound:auth-thankyou")
        except (ChannelGone, AriError) as exc:  # a REST call on a channel just gone: 404
            log.info("survey %s: the caller hung up (%r)", self.linkedid, exc)
        finally:
            with contextlib.suppress(AriError):
                await self.ari.request("DELETE", f"channels/{self.channel_id}")

    async def _next(self, timeout: float) -> dict[str, Any]:
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event.get("type") in GONE_EVENTS:
            raise ChannelGone
        return event

    async def _play(self, *media: str) -> str:
        playback = f"survey-{uuid.uuid4().hex}"
        await self.ari.request(
            "POST",
            f"channels/{self.channel_id}/play/{playback}",
            params={"media": ",".join(media)},
        )
        return playback

    async def _ask(self, question: Question) -> int | None:
        for _ in range(self.timings.attempts):
            playback = await self._play(question.prompt, "sound:beep")
            collector = DigitCollector(question.low, question.high)
            try:
                return await self._collect(collector, playback)
            except InvalidEntry as exc:
                log.info("survey %s: %s: %s", self.linkedid, question.name, exc)
                await self._play_to_end("sound:invalid")
        return None

    async def _collect(self, collector: DigitCollector, playback: str) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timings.first_digit
        while True:
            remaining = deadline - loop.time()
            try:
                event = await self._next(max(remaining, 0))
            except TimeoutError:
                return collector.finish()
            if event.get("type") != "ChannelDtmfReceived":
                continue
            if not collector.digits:  # barge-in
                with contextlib.suppress(Exception):
                    await self.ari.request("DELETE", f"playbacks/{playback}")
            score = collector.feed(str(event.get("digit", "")))
            if score is not None:
                return score
            deadline = loop.time() + self.timings.next_digit

    async def _play_to_end(self, media: str) -> None:
        playback = await self._play(media)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timings.goodbye
        with contextlib.suppress(TimeoutError):
            while True:
                event = await self._next(max(deadline - loop.time(), 0))
                if event.get("type") == "PlaybackFinished" and (
                    event.get("playback", {}).get("id") == playback
                ):
                    return


def linkedid_of(args: list[str], channel: dict[str, Any]) -> str:
    """The Linkedid passed by the dialplan, else the channel's own."""
    given = args[1] if len(args) > 1 else ""
    return given if _LINKEDID.fullmatch(given) else str(channel.get("id", ""))


def now() -> datetime:
    return datetime.now(UTC)
