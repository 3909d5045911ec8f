"""automation: rules (with the default rules installed), their firings, survey answers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from callcenter.automation.defaults import default_rule_rows

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STAMP = sa.DateTime(timezone=True)
RULE_COLUMNS = (
    "name",
    "title",
    "trigger",
    "conditions",
    "actions",
    "templates",
    "delay_seconds",
    "enabled",
    "builtin",
    "position",
)


def _install_default_rules(rules: sa.Table) -> None:
    """Insert the shipped rules as they are now, only the columns this revision creates."""
    now = datetime.now(UTC)
    rows = [
        {**{c: row[c] for c in RULE_COLUMNS}, "created_at": now, "updated_at": now}
        for row in default_rule_rows()
    ]
    op.bulk_insert(rules, rows)


def upgrade() -> None:
    rules = op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("actions", JSON, nullable=False),
        sa.Column("templates", JSON, nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_rules_name")),
    )
    with op.batch_alter_table("rules") as batch:
        batch.create_index(batch.f("ix_rules_trigger"), ["trigger"], unique=False)

    op.create_table(
        "rule_firings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=True),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_rule_firings_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["rules.id"],
            name=op.f("fk_rule_firings_rule_id_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_rule_firings_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_firings")),
        sa.UniqueConstraint("key", name=op.f("uq_rule_firings_key")),
    )
    with op.batch_alter_table("rule_firings") as batch:
        batch.create_index("ix_rule_firings_rule_at", ["rule_id", "at"], unique=False)

    op.create_table(
        "survey_answers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("answered_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_survey_answers_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_survey_answers_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
        sa.UniqueConstraint("ticket_id", "round", name=op.f("uq_survey_answers_ticket_id_round")),
    )
    with op.batch_alter_table("survey_answers") as batch:
        batch.create_index(batch.f("ix_survey_answers_answered_at"), ["answered_at"], unique=False)
        batch.create_index(batch.f("ix_survey_answers_customer_id"), ["customer_id"], unique=False)

    _install_default_rules(rules)


def downgrade() -> None:
    with op.batch_alter_table("survey_answers") as batch:
        batch.drop_index(batch.f("ix_survey_answers_customer_id"))
        batch.drop_index(batch.f("ix_survey_answers_answered_at"))
    op.drop_table("survey_answers")
    with op.batch_alter_table("rule_firings") as batch:
        batch.drop_index("ix_rule_firings_rule_at")
    op.drop_table("rule_firings")
    with op.batch_alter_table("rules") as batch:
        batch.drop_index(batch.f("ix_rules_trigger"))
    op.drop_table("rules")
