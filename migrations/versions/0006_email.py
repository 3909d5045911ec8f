"""email: IMAP checkpoints and mail that could not be stored

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imap_checkpoints",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("mailbox", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_checkpoints")),
        sa.UniqueConstraint("account", "mailbox", name=op.f("uq_imap_checkpoints_account_mailbox")),
    )
    op.create_table(
        "email_failures",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_failures")),
    )
    with op.batch_alter_table("email_failures") as batch:
        batch.create_index(batch.f("ix_email_failures_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_failures") as batch:
        batch.drop_index(batch.f("ix_email_failures_sha256"))
    op.drop_table("email_failures")
    op.drop_table("imap_checkpoints")
