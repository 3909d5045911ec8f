"""A small hand-made contact history whose figures are worked out by hand in the tests.

Day D is 2 March 2026 in Moscow (UTC+3); T0 is 10:00 local. Four customers:

- Ivan writes on Telegram (ticket t1, Anna), calls 30 min later before any answer (support,
  answered after 10 s), gets a Telegram reply at +40 min; t1 is solved at +1 h. Exactly 7 days
  after that he emails about the same order: a repeat contact (the edge counts).
- Olga emails (t2, Boris), is answered after 5 min, calls at +1 h (sales, abandoned after 40 s),
  calls again at +1 h 10 (answered after 25 s); t2 is solved at +2 h. She writes on Telegram
  about the same intent 7 days and 1 second after the solve: not a repeat.
- a customer with a hostile name calls (t3, Anna; support, answered after 25 s), then writes
  on Telegram about something else.
- Lena writes on Telegram twice about sizes (t5, t6), never answered in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.models import SurveyAnswer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    Interaction,
    Queue,
    ScreenPop,
    Ticket,
    TicketStatus,
    User,
)

D = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
HOSTILE = '=HYPERLINK("http://evil.example")<img src=x onerror=alert(1)><script>alert(2)</script>'
MIN, HOUR, WEEK = timedelta(minutes=1), timedelta(hours=1), timedelta(days=7)


@dataclass
class Dataset:
    customers: dict[str, Customer]
    tickets: dict[str, Ticket]
    interactions: dict[str, Interaction]


def _ticket(customer: Customer, channel: Channel, at: datetime, **kw: object) -> Ticket:
    solved = kw.pop("solved", None)
    return Ticket(
        customer_id=customer.id,
        channel=channel,
        status=TicketStatus.SOLVED if solved else TicketStatus.OPEN,
        created_at=at,
        updated_at=at,
        first_response_at=at + kw.pop("frt"),  # type: ignore[operator]
        solved_at=at + solved if solved else None,  # type: ignore[operator]
        **kw,
    )


async def make(db: AsyncSession, staff: dict[str, User]) -> Dataset:
    anna, boris = staff["anna"].id, staff["boris"].id
    db.add_all(
        [
            Queue(name="support", service_level_seconds=20, abandoned_in_service_level=False),
            Queue(name="sales", service_level_seconds=30, abandoned_in_service_level=True),
        ]
    )
    c = {
        name: Customer(display_name=name)
        for name in ("Иван Петров", "Ольга Смирнова", HOSTILE, "Лена Котова")
    }
    db.add_all(c.values())
    await db.flush()
    ivan, olga, bad, lena = c.values()
    t = {
        "t1": _ticket(
            ivan, Channel.TELEGRAM, T0, frt=MIN, solved=HOUR, assignee_id=anna,
            intents=["delivery"], order_numbers=["123456"],
        ),
        "t2": _ticket(
            olga, Channel.EMAIL, T0, frt=5 * MIN, solved=2 * HOUR, assignee_id=boris,
            intents=["refund"], order_numbers=[],
        ),
        "t3": _ticket(
            bad, Channel.CALL, T0 + 10 * MIN, frt=timedelta(seconds=30), solved=30 * MIN,
            assignee_id=anna, intents=["delivery"], order_numbers=["777"],
        ),
        "t5": _ticket(lena, Channel.TELEGRAM, T0 + 2 * HOUR, frt=4 * MIN, intents=["size"]),
        "t6": _ticket(lena, Channel.TELEGRAM, T0 + 3 * HOUR, frt=10 * MIN, intents=["size"]),
    }  # fmt: skip
    db.add_all(t.values())
    await db.flush()

    def msg(customer: Customer, channel: Channel, at: datetime, **kw: object) -> Interaction:
        return Interaction(
            customer_id=customer.id,
            channel=channel,
            direction=kw.pop("direction", Direction.INBOUND),
            occurred_at=at,
            **kw,
        )

    i = {
        "i1": msg(ivan, Channel.TELEGRAM, T0, ticket_id=t["t1"].id, intents=["delivery"],
                  order_numbers=["123456"]),
        "i2": msg(ivan, Channel.CALL, T0 + 30 * MIN, ticket_id=t["t1"].id, agent_id=anna),
        "i3": msg(ivan, Channel.TELEGRAM, T0 + 40 * MIN, direction=Direction.OUTBOUND,
                  ticket_id=t["t1"].id, agent_id=anna),
        "i4": msg(ivan, Channel.EMAIL, T0 + HOUR + WEEK, order_numbers=["123456"]),
        "i5": msg(olga, Channel.EMAIL, T0, ticket_id=t["t2"].id, intents=["refund"]),
        "i6": msg(olga, Channel.EMAIL, T0 + 5 * MIN, direction=Direction.OUTBOUND,
                  ticket_id=t["t2"].id, agent_id=boris),
        "i7": msg(olga, Channel.CALL, T0 + HOUR, intents=["refund"]),
        "i8": msg(olga, Channel.CALL, T0 + 70 * MIN, agent_id=boris),
        "i9": msg(olga, Channel.TELEGRAM, T0 + 2 * HOUR + WEEK + timedelta(seconds=1),
                  intents=["refund"]),
        "i10": msg(bad, Channel.CALL, T0 + 10 * MIN, ticket_id=t["t3"].id, agent_id=anna,
                   intents=["delivery"]),
        "i11": msg(bad, Channel.TELEGRAM, T0 + 20 * MIN, intents=["payment"],
                   order_numbers=["999"]),
        "i12": msg(lena, Channel.TELEGRAM, T0 + 2 * HOUR, ticket_id=t["t5"].id, intents=["size"]),
        "i13": msg(lena, Channel.TELEGRAM, T0 + 3 * HOUR, ticket_id=t["t6"].id, intents=["size"]),
    }  # fmt: skip
    db.add_all(i.values())
    await db.flush()
    for key, queue, agent, outcome, wait in (
        ("i2", "support", anna, CallOutcome.ANSWERED, 10),
        ("i7", "sales", None, CallOutcome.ABANDONED, 40),
        ("i8", "sales", boris, CallOutcome.ANSWERED, 25),
        ("i10", "support", anna, CallOutcome.ANSWERED, 25),
    ):
        at = i[key].occurred_at
        answered = outcome == CallOutcome.ANSWERED
        db.add(
            Call(
                interaction_id=i[key].id,
                linkedid=f"call-{key}",
                queue=queue,
                agent_id=agent,
                outcome=outcome,
                wait_seconds=wait,
                talk_seconds=60 if answered else 0,
                started_at=at,
                answered_at=at + timedelta(seconds=wait) if answered else None,
                ended_at=at + timedelta(seconds=wait + 60),
            )
        )
    db.add_all(
        [
            ScreenPop(linkedid="call-i2", user_id=anna, interaction_ids=[i["i1"].id]),
            ScreenPop(linkedid="call-i7", user_id=boris, interaction_ids=[]),
        ]
    )
    for key, score in (("t1", 10), ("t2", 6), ("t3", 9), ("t6", 8)):
        db.add(
            SurveyAnswer(
                ticket_id=t[key].id,
                customer_id=t[key].customer_id,
                score=score,
                channel="email",
                answered_at=T0 + 5 * HOUR,
            )
        )
    await db.flush()
    return Dataset(c, t, i)
