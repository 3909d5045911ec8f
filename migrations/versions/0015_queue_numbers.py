"""queue_numbers: the dialled number (DID) whose trunk calls a queue takes

Existing queues get none: every call keeps going to support until an admin sets numbers.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("inbound_number", sa.String(length=15), nullable=True))
        batch.create_unique_constraint(op.f("uq_queues_inbound_number"), ["inbound_number"])


def downgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.drop_constraint(op.f("uq_queues_inbound_number"), type_="unique")
        batch.drop_column("inbound_number")
