"""screen_pops: what each screen-pop showed to which agent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "screen_pops",
        sa.Column("id", ID, nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("agent_interface", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("caller_number", sa.String(length=64), nullable=False),
        sa.Column("ticket_ids", JSON, nullable=False),
        sa.Column("interaction_ids", JSON, nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_screen_pops_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_screen_pops_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screen_pops")),
    )
    op.create_index(op.f("ix_screen_pops_linkedid"), "screen_pops", ["linkedid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_screen_pops_linkedid"), table_name="screen_pops")
    op.drop_table("screen_pops")
