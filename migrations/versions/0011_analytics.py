"""analytics: pre-aggregated figures for the analytics pages

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "analytics_contacts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        _count("contacts"),
        _count("calls"),
        _count("answered"),
        _count("answered_in_sl"),
        _count("abandoned"),
        sa.PrimaryKeyConstraint(
            "day", "hour", "channel", "queue", "agent_id", "intent",
            name=op.f("pk_analytics_contacts"),
        ),
    )  # fmt: skip
    op.create_table(
        "analytics_transitions",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("from_channel", sa.String(length=16), nullable=False),
        sa.Column("to_channel", sa.String(length=16), nullable=False),
        sa.Column("unanswered", sa.Boolean(), nullable=False),
        _count("moves"),
        sa.PrimaryKeyConstraint(
            "day", "from_channel", "to_channel", "unanswered",
            name=op.f("pk_analytics_transitions"),
        ),
    )  # fmt: skip
    op.create_table(
        "analytics_tickets",
        sa.Column("ticket_id", ID, autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("frt_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("solved_day", sa.Date(), nullable=True),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_analytics_tickets")),
    )
    op.create_index("ix_analytics_tickets_day", "analytics_tickets", ["day"])
    op.create_index("ix_analytics_tickets_solved_day", "analytics_tickets", ["solved_day"])
    op.create_index(
        "ix_analytics_tickets_frt",
        "analytics_tickets",
        ["channel", "frt_seconds", "day", "agent_id"],
    )
    op.create_index(
        "ix_analytics_tickets_resolution",
        "analytics_tickets",
        ["channel", "resolution_seconds", "day", "agent_id"],
    )
    op.create_table(
        "analytics_ticket_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        _count("tickets"),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        _count("repeats"),
        sa.PrimaryKeyConstraint(
            "day", "metric", "channel", "agent_id", "bucket",
            name=op.f("pk_analytics_ticket_days"),
        ),
    )  # fmt: skip
    op.create_table(
        "analytics_nps",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        _count("answers"),
        _count("promoters"),
        _count("detractors"),
        sa.PrimaryKeyConstraint("day", "channel", "agent_id", name=op.f("pk_analytics_nps")),
    )
    op.create_table(
        "analytics_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("gaps", JSON, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_state")),
    )
    op.create_table(
        "analytics_dirty",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_dirty")),
    )
    op.create_index("ix_analytics_interactions_occurred_at", "interactions", ["occurred_at"])
    op.create_index("ix_analytics_tickets_updated_at", "tickets", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_analytics_tickets_updated_at", table_name="tickets")
    op.drop_index("ix_analytics_interactions_occurred_at", table_name="interactions")
    for table in (
        "analytics_dirty",
        "analytics_state",
        "analytics_nps",
        "analytics_ticket_days",
        "analytics_tickets",
        "analytics_transitions",
        "analytics_contacts",
    ):
        op.drop_table(table)
