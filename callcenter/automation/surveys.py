"""NPS surveys: signed answer links and buttons, recording an answer once, the NPS figure.

An email carries one link per score, ``<public_url>/survey/<token>``; Telegram carries inline
buttons whose callback data is ``nps:<ticket>:<round>:<score>:<signature>``. Both are signed
with a key derived from the ``session_key`` secret, so nobody can vote for another ticket.
The web route should show the chosen score and record it on a POST: mail scanners fetch every
link of a message, and the first recorded answer is kept.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.events import SurveyAnswered
from callcenter.automation.models import SurveyAnswer
from callcenter.domain.customers import find_customer, get_customer
from callcenter.domain.errors import DomainError, NotFound
from callcenter.models import IdentityKind, Ticket

SCORES = range(11)
CALLBACK_PREFIX = "nps"
_SIGNATURE_HEX = 24


class InvalidSurveyAnswer(DomainError):
    code = "invalid-survey-answer"


class SurveySigner:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("survey links need the session_key secret to be set")
        self._key = hashlib.sha256(b"callcenter/nps\0" + secret.encode()).digest()

    def _signature(self, ticket_id: int, round_: int, score: int) -> str:
        message = f"{ticket_id}.{round_}.{score}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_SIGNATURE_HEX]

    def token(self, ticket_id: int, round_: int, score: int) -> str:
        return f"{ticket_id}.{round_}.{score}.{self._signature(ticket_id, round_, score)}"

    def callback_data(self, ticket_id: int, round_: int, score: int) -> str:
        """Telegram callback data (at most 64 bytes)."""
        signature = self._signature(ticket_id, round_, score)
        return f"{CALLBACK_PREFIX}:{ticket_id}:{round_}:{score}:{signature}"

    def _check(self, parts: list[str]) -> tuple[int, int, int]:
        if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
            raise InvalidSurveyAnswer("malformed survey answer")
        ticket_id, round_, score = (int(p) for p in parts[:3])
        if not hmac.compare_digest(parts[3], self._signature(ticket_id, round_, score)):
            raise InvalidSurveyAnswer("the survey answer's signature does not match")
        return ticket_id, round_, score

    def verify_token(self, token: str) -> tuple[int, int, int]:
        """(ticket id, round, score) of a link token; InvalidSurveyAnswer if forged."""
        return self._check(token.split("."))

    def verify_callback(self, data: str) -> tuple[int, int, int]:
        prefix, _, rest = data.partition(":")
        if prefix != CALLBACK_PREFIX:
            raise InvalidSurveyAnswer("not a survey answer")
        return self._check(rest.split(":"))


def survey_links(
    signer: SurveySigner, public_url: str, ticket_id: int, round_: int
) -> list[dict[str, Any]]:
    base = public_url.rstrip("/")
    return [
        {"score": s, "url": f"{base}/survey/{signer.token(ticket_id, round_, s)}"} for s in SCORES
    ]


def survey_keyboard(signer: SurveySigner, ticket_id: int, round_: int) -> dict[str, Any]:
    """Inline keyboard of the 11 scores, 0-5 on the first row and 6-10 on the second."""

    def button(score: int) -> dict[str, str]:
        return {"text": str(score), "callback_data": signer.callback_data(ticket_id, round_, score)}

    return {"inline_keyboard": [[button(s) for s in range(6)], [button(s) for s in range(6, 11)]]}


async def record_answer(
    session: AsyncSession,
    *,
    ticket_id: int,
    round_: int,
    score: int,
    channel: str,
    at: datetime,
    customer_id: int | None = None,
) -> tuple[SurveyAnswer, SurveyAnswered | None]:
    """Store a score once per ticket and round; a later answer returns the first one and no
    event. ``customer_id``, when given, must own the ticket. The caller commits and then
    publishes the event."""
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise InvalidSurveyAnswer(f"a score is an integer from 0 to 10, not {score!r}")
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    owner = await get_customer(session, ticket.customer_id)
    if customer_id is not None and (await get_customer(session, customer_id)).id != owner.id:
        raise InvalidSurveyAnswer("this survey belongs to another customer")
    query = select(SurveyAnswer).where(
        SurveyAnswer.ticket_id == ticket_id, SurveyAnswer.round == round_
    )
    existing = await session.scalar(query)
    if existing is not None:
        return existing, None
    answer = SurveyAnswer(
        ticket_id=ticket_id,
        round=round_,
        customer_id=owner.id,
        score=score,
        channel=channel,
        answered_at=at,
    )
    try:
        async with session.begin_nested():
            session.add(answer)
    except IntegrityError:  # the same survey answered concurrently
        existing = await session.scalar(query)
        if existing is None:
            raise
        return existing, None
    return answer, SurveyAnswered(answer.id, ticket_id, owner.id, score, channel)


async def answer_from_token(
    session: AsyncSession, signer: SurveySigner, token: str, at: datetime
) -> tuple[SurveyAnswer, SurveyAnswered | None]:
    """Record the answer of an email link (the web route's POST)."""
    ticket_id, round_, score = signer.verify_token(token)
    return await record_answer(
        session, ticket_id=ticket_id, round_=round_, score=score, channel="email", at=at
    )


async def answer_from_callback(
    session: AsyncSession, signer: SurveySigner, data: str, telegram_user_id: int, at: datetime
) -> tuple[SurveyAnswer, SurveyAnswered | None]:
    """Record the answer of a Telegram button pressed by ``telegram_user_id``."""
    ticket_id, round_, score = signer.verify_callback(data)
    customer = await find_customer(session, IdentityKind.TELEGRAM, telegram_user_id)
    if customer is None:
        raise InvalidSurveyAnswer("this Telegram account is not a known customer")
    return await record_answer(
        session,
        ticket_id=ticket_id,
        round_=round_,
        score=score,
        channel="telegram",
        at=at,
        customer_id=customer.id,
    )


@dataclass(frozen=True)
class NpsSummary:
    answers: int
    promoters: int
    passives: int
    detractors: int

    @property
    def score(self) -> float | None:
        """Net Promoter Score, -100 to 100; None without answers."""
        if not self.answers:
            return None
        return 100 * (self.promoters - self.detractors) / self.answers


async def nps_summary(session: AsyncSession, since: datetime, until: datetime) -> NpsSummary:
    """NPS of the answers given in ``[since, until)``."""
    rows = await session.execute(
        select(SurveyAnswer.score, func.count())
        .where(SurveyAnswer.answered_at >= since, SurveyAnswer.answered_at < until)
        .group_by(SurveyAnswer.score)
    )
    counts = {score: count for score, count in rows}
    return NpsSummary(
        answers=sum(counts.values()),
        promoters=sum(c for s, c in counts.items() if s >= 9),
        passives=sum(c for s, c in counts.items() if s in (7, 8)),
        detractors=sum(c for s, c in counts.items() if s <= 6),
    )
