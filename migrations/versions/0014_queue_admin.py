"""queue_admin: the Asterisk side of queues managed on /admin/queues, and their static members

Existing queues stay unmanaged (they live in queues.conf); nothing is inserted.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULTS = {
    "managed": (sa.Boolean(), sa.false()),
    "strategy": (sa.String(length=16), "rrmemory"),
    "ring_timeout_seconds": (sa.Integer(), "15"),
    "max_callers": (sa.Integer(), "0"),
}


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        for name, (type_, default) in DEFAULTS.items():
            batch.add_column(sa.Column(name, type_, nullable=False, server_default=default))
        batch.add_column(sa.Column("wrapup_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("queues") as batch:
        for name in DEFAULTS:
            batch.alter_column(name, server_default=None)
    op.create_table(
        "queue_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(length=64), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.Column("member_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_members_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_members")),
        sa.UniqueConstraint(
            "queue_id", "interface", name=op.f("uq_queue_members_queue_id_interface")
        ),
    )


def downgrade() -> None:
    op.drop_table("queue_members")
    with op.batch_alter_table("queues") as batch:
        for name in ("wrapup_seconds", *reversed(list(DEFAULTS))):
            batch.drop_column(name)
