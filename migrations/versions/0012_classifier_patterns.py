"""classifier_patterns: the classifier's pattern dictionary and callback dialling

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OLD_STATUSES = ("requested", "assigned", "done", "cancelled")
NEW_STATUSES = (*OLD_STATUSES, "failed")
STATUS_CHECK = "ck_callback_requests_callbackstatus"


def _status_check(batch: object, statuses: tuple[str, ...]) -> None:
    batch.drop_constraint(op.f(STATUS_CHECK), type_="check")  # type: ignore[attr-defined]
    allowed = ", ".join(f"'{status}'" for status in statuses)
    batch.create_check_constraint(op.f(STATUS_CHECK), f"status IN ({allowed})")  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "classifier_dictionary",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patterns", JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifier_dictionary")),
    )
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("agent_endpoint", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("outcome", sa.String(length=200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        _status_check(batch, NEW_STATUSES)
    with op.batch_alter_table("callback_requests") as batch:
        for column in ("queue", "attempts", "agent_endpoint", "outcome"):
            batch.alter_column(column, server_default=None)


def downgrade() -> None:
    op.execute("UPDATE callback_requests SET status = 'cancelled' WHERE status = 'failed'")
    with op.batch_alter_table("callback_requests") as batch:
        _status_check(batch, OLD_STATUSES)
        for column in (
            "lease_until",
            "outcome",
            "last_attempt_at",
            "agent_endpoint",
            "attempts",
            "queue",
        ):
            batch.drop_column(column)
    op.drop_table("classifier_dictionary")
