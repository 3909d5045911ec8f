"""callback_outcomes: outbound attempts' own call outcomes, and an index for the /callbacks list

Callback attempts that did not reach the customer were stored as ``missed`` calls with the
reason only in the interaction's text; they get ``no_answer``, ``busy`` or ``failed`` (read
back from that text, which the dialler wrote in three fixed forms). Downgrading turns them into
``missed`` again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OUTCOMES = ("answered", "abandoned", "timeout", "missed")
NEW_OUTCOMES = (*OLD_OUTCOMES, "no_answer", "busy", "failed")
OUTCOME_CHECK = "ck_calls_calloutcome"
ATTEMPT_TEXTS = {
    "no_answer": "не ответил",
    "busy": "занято",
    "failed": "не удалось дозвониться",
}
"""The endings of a callback attempt's interaction text (automation/callbacks.py) per outcome."""
INDEX = "ix_callback_requests_last_attempt_at"


def _outcome_check(batch: object, outcomes: tuple[str, ...]) -> None:
    batch.drop_constraint(op.f(OUTCOME_CHECK), type_="check")  # type: ignore[attr-defined]
    allowed = ", ".join(f"'{outcome}'" for outcome in outcomes)
    batch.create_check_constraint(op.f(OUTCOME_CHECK), f"outcome IN ({allowed})")  # type: ignore[attr-defined]


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        _outcome_check(batch, NEW_OUTCOMES)
    calls = sa.table("calls", sa.column("interaction_id"), sa.column("outcome"))
    interactions = sa.table(
        "interactions", sa.column("id"), sa.column("direction"), sa.column("text")
    )
    for outcome, ending in ATTEMPT_TEXTS.items():
        attempts = sa.select(interactions.c.id).where(
            interactions.c.direction == "out",
            interactions.c.text.like(f"Обратный звонок на %: {ending}"),
        )
        op.execute(
            calls.update()
            .where(calls.c.outcome == "missed", calls.c.interaction_id.in_(attempts))
            .values(outcome=outcome)
        )
    with op.batch_alter_table("callback_requests") as batch:
        batch.create_index(op.f(INDEX), ["last_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_index(op.f(INDEX))
    new = ", ".join(f"'{outcome}'" for outcome in NEW_OUTCOMES if outcome not in OLD_OUTCOMES)
    op.execute(f"UPDATE calls SET outcome = 'missed' WHERE outcome IN ({new})")
    with op.batch_alter_table("calls") as batch:
        _outcome_check(batch, OLD_OUTCOMES)
