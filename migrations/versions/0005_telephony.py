"""telephony: answers to the post-call phone survey

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_surveys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("question", sa.String(length=16), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_surveys")),
        sa.UniqueConstraint("linkedid", "question", name=op.f("uq_call_surveys_linkedid_question")),
    )
    with op.batch_alter_table("call_surveys") as batch:
        batch.create_index(batch.f("ix_call_surveys_answered_at"), ["answered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_surveys") as batch:
        batch.drop_index(batch.f("ix_call_surveys_answered_at"))
    op.drop_table("call_surveys")
