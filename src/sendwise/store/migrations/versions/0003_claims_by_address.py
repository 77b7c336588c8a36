"""The frequency cap counts each address's claimed messages of every campaign: an index on
the message's normalized address and status (docs/adr/0086).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_message_address_status", "message", [sa.text("lower(trim(email))"), "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_address_status", "message")
