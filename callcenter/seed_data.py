"""Realistic Russian demo data: names, phone numbers, messages, as plain row tuples.

Kept apart from the loader so the generator can be benchmarked and reused by tests.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MALE_FIRST = (
    "Александр Алексей Андрей Антон Артём Борис Вадим Виктор Владимир Дмитрий Евгений "
    "Иван Игорь Илья Кирилл Константин Максим Михаил Никита Николай Олег Павел Роман "
    "Сергей Станислав Степан Тимур Юрий "
).split()
FEMALE_FIRST = (
    "Алина Анастасия Анна Валентина Валерия Вера Виктория Дарья Екатерина Елена Ирина "
    "Ксения Людмила Марина Мария Наталья Нина Ольга Полина Светлана София Татьяна "
    "Юлия "
).split()
SURNAMES = (
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров "
    "Морозов Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев "
    "Орлов Андреев Макаров Никитин Захаров Зайцев Соловьёв Борисов Яковлев Григорьев "
).split()
TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch  y  e yu ya".split(" "),
        strict=True,
    )
)
MOBILE_CODES = (
    "903",
    "905",
    "906",
    "909",
    "910",
    "912",
    "915",
    "916",
    "917",
    "919",
    "920",
    "925",
    "926",
    "929",
    "950",
    "952",
    "960",
    "965",
    "977",
    "985",
    "999",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
QUEUES = ("support", "sales")

INBOUND = {
    "delivery": (
        "Здравствуйте! Мой заказ №{o} до сих пор не пришёл.",
        "Где мой заказ {o}? Трек-номер не обновляется третий день.",
        "Курьер не приехал, заказ #{o} так и не доставили.",
    ),
    "invoice": (
        "Не пришёл чек по заказу №{o}.",
        "Пришлите, пожалуйста, счёт на оплату заказа {o}.",
    ),
    "exchange": (
        "Хочу обменять куртку из заказа №{o} на другой цвет.",
        "Можно заменить кроссовки из заказа {o} на размер побольше?",
    ),
    "refund": (
        "Верните деньги за заказ №{o}, товар пришёл с браком.",
        "Оформите возврат по заказу {o}, пожалуйста.",
    ),
    "size": (
        "Подскажите, какой размер выбрать при росте 176 см?",
        "Маломерит ли платье? Обычно ношу 44.",
    ),
    "payment": (
        "Оплата по заказу №{o} не прошла, а деньги списались.",
        "С карты дважды списали оплату за заказ {o}!",
    ),
}
OUTBOUND = (
    "Проверяем статус заказа №{o}, ответим сегодня до 18:00.",
    "Чек по заказу №{o} отправили повторно на вашу почту.",
    "Оформили обмен, курьер заберёт товар завтра.",
    "Возврат по заказу №{o} оформлен, деньги придут в течение 5 дней.",
    "Передали заказ №{o} в службу доставки, ожидайте звонка курьера.",
)
CHANNELS = ("telegram", "email", "call")
SURVEY_SHARE = 0.3
"""Of solved tickets, how many the customer rated."""
SCORE_WEIGHTS = (2, 1, 1, 2, 2, 4, 6, 9, 16, 22, 35)
"""Scores 0..10 as real NPS surveys skew: 57 % promoters, 25 % passives, 18 % detractors."""


def translit(text: str) -> str:
    return "".join(TRANSLIT.get(ch, ch) for ch in text.lower())


@dataclass
class Batch:
    """Rows for one slice of customers, as tuples in the tables' column order."""

    customers: list[tuple] = field(default_factory=list)
    identities: list[tuple] = field(default_factory=list)
    tickets: list[tuple] = field(default_factory=list)
    interactions: list[tuple] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    order_refs: list[tuple] = field(default_factory=list)
    survey_answers: list[tuple] = field(default_factory=list)


@dataclass
class NextIds:
    customer: int = 1
    identity: int = 1
    ticket: int = 1
    interaction: int = 1
    order_ref: int = 1
    survey_answer: int = 1


CUSTOMER_COLUMNS = ("id", "display_name", "language", "notes", "tags", "created_at", "updated_at")
IDENTITY_COLUMNS = (
    "id",
    "customer_id",
    "kind",
    "value",
    "display",
    "verified",
    "failing",
    "source",
    "created_at",
)
TICKET_COLUMNS = (
    "id",
    "customer_id",
    "status",
    "channel",
    "subject",
    "intents",
    "order_numbers",
    "priority",
    "created_at",
    "updated_at",
    "first_response_at",
    "solved_at",
    "reopened_count",
)
INTERACTION_COLUMNS = (
    "id",
    "customer_id",
    "ticket_id",
    "channel",
    "direction",
    "external_id",
    "text",
    "attachments",
    "intents",
    "order_numbers",
    "occurred_at",
    "created_at",
)
CALL_COLUMNS = (
    "interaction_id",
    "linkedid",
    "queue",
    "caller_number",
    "wait_seconds",
    "talk_seconds",
    "outcome",
    "started_at",
    "answered_at",
    "ended_at",
)
ORDER_REF_COLUMNS = ("id", "order_number", "customer_id", "ticket_id", "created_at")
SURVEY_ANSWER_COLUMNS = (
    "id",
    "ticket_id",
    "round",
    "customer_id",
    "score",
    "channel",
    "answered_at",
)


class Generator:
    """Makes ``Batch``es of customers with about ``interactions_per_customer`` interactions each."""

    def __init__(
        self, seed: int = 1, now: datetime | None = None, interactions_per_customer: int = 10
    ) -> None:
        self.rng = random.Random(seed)
        self.survey_rng = random.Random(-seed)  # apart, so the other rows stay as they were
        self.now = now or datetime.now(UTC)
        self.per_customer = interactions_per_customer

    def batch(self, ids: NextIds, count: int) -> Batch:
        out = Batch()
        for _ in range(count):
            self._customer(out, ids)
        return out

    def _customer(self, out: Batch, ids: NextIds) -> None:
        rng = self.rng
        cid = ids.customer
        ids.customer += 1
        female = rng.random() < 0.55
        first = rng.choice(FEMALE_FIRST if female else MALE_FIRST)
        surname = rng.choice(SURNAMES) + ("а" if female else "")
        name = f"{first} {surname}"
        created = self.now - timedelta(days=90, seconds=rng.randrange(86400 * 365))
        language = "en" if rng.random() < 0.05 else "ru"
        out.customers.append((cid, name, language, "", "[]", created, created))

        phone = f"+7{MOBILE_CODES[cid % len(MOBILE_CODES)]}{cid // len(MOBILE_CODES) % 10**7:07d}"
        telegram = str(100_000_000 + cid)
        email = f"{translit(first)}.{translit(surname)}.{cid}@{EMAIL_DOMAINS[cid % 3]}"
        out.identities.append(
            (ids.identity, cid, "phone", phone, phone, True, False, "seed", created)
        )
        ids.identity += 1
        has = {"call": True, "telegram": rng.random() < 0.6, "email": rng.random() < 0.6}
        if has["telegram"]:
            out.identities.append(
                (
                    ids.identity,
                    cid,
                    "telegram",
                    telegram,
                    "@" + translit(first) + str(cid),
                    True,
                    False,
                    "seed",
                    created,
                )
            )
            ids.identity += 1
        if has["email"]:
            out.identities.append(
                (ids.identity, cid, "email", email, email, True, False, "seed", created)
            )
            ids.identity += 1
        channels = [c for c in CHANNELS if has[c]]

        remaining = max(1, int(rng.gauss(self.per_customer, 2)))
        while remaining > 0:
            size = min(remaining, rng.randint(2, 6))
            remaining -= size
            self._ticket(out, ids, cid, channels, size, phone, telegram)

    def _ticket(
        self,
        out: Batch,
        ids: NextIds,
        cid: int,
        channels: list[str],
        size: int,
        phone: str,
        telegram: str,
    ) -> None:
        rng, dumps = self.rng, json.dumps
        tid = ids.ticket
        ids.ticket += 1
        channel = rng.choice(channels)
        intent = rng.choice(tuple(INBOUND))
        order = str(rng.randrange(10_000, 999_999)) if intent != "size" else ""
        orders = [order] if order else []
        opened = self.now - timedelta(seconds=rng.randrange(86400 * 90))
        # Nothing a seeded ticket did lies in the future, however close to now it was opened.
        first_reply = min(opened + timedelta(seconds=rng.randrange(60, 4 * 3600)), self.now)
        status = rng.choices(("solved", "closed", "open", "pending", "new"), (50, 30, 10, 5, 5))[0]
        solved = (
            min(first_reply + timedelta(hours=rng.randrange(1, 72)), self.now)
            if status in ("solved", "closed")
            else None
        )
        subject = INBOUND[intent][0].format(o=order)[:120]
        out.tickets.append(
            (
                tid,
                cid,
                status,
                channel,
                subject,
                dumps([intent]),
                dumps(orders),
                0,
                opened,
                solved or first_reply,
                first_reply,
                solved,
                0,
            )
        )
        if order:
            out.order_refs.append((ids.order_ref, order, cid, tid, opened))
            ids.order_ref += 1
        if solved is not None:
            self._survey(out, ids, tid, cid, channel, solved)
        at = opened
        for n in range(size):
            iid = ids.interaction
            ids.interaction += 1
            inbound = n % 2 == 0
            ch = channel if n == 0 or rng.random() < 0.7 else rng.choice(channels)
            text = (rng.choice(INBOUND[intent]) if inbound else rng.choice(OUTBOUND)).format(
                o=order
            )
            if ch == "telegram":
                external = f"{telegram}:{iid}"
            elif ch == "email":
                external = f"<seed.{iid}@callcenter.example>"
            else:
                external = f"seed.{iid}"
            out.interactions.append(
                (
                    iid,
                    cid,
                    tid,
                    ch,
                    "in" if inbound else "out",
                    external,
                    text,
                    "[]",
                    dumps([intent] if inbound else []),
                    dumps(orders if inbound else []),
                    at,
                    at,
                )
            )
            if ch == "call":
                answered = rng.random() < 0.85
                wait = rng.randrange(3, 180)
                talk = rng.randrange(30, 600) if answered else 0
                out.calls.append(
                    (
                        iid,
                        external,
                        QUEUES[iid % 2],
                        phone,
                        wait,
                        talk,
                        "answered" if answered else "abandoned",
                        at,
                        at + timedelta(seconds=wait) if answered else None,
                        at + timedelta(seconds=wait + talk),
                    )
                )
            at = min(at + timedelta(seconds=rng.randrange(60, 3 * 3600)), self.now)

    def _survey(
        self, out: Batch, ids: NextIds, tid: int, cid: int, channel: str, solved: datetime
    ) -> None:
        """Some customers rate a solved ticket within a day, on Telegram or by the emailed link."""
        rng = self.survey_rng
        if rng.random() >= SURVEY_SHARE:
            return
        score = rng.choices(range(11), SCORE_WEIGHTS)[0]
        answered = solved + timedelta(seconds=rng.randrange(60, 86400))
        if answered > self.now:
            return
        via = "telegram" if channel == "telegram" else "email"
        out.survey_answers.append((ids.survey_answer, tid, 0, cid, score, via, answered))
        ids.survey_answer += 1
