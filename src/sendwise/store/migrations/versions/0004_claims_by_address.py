"""The frequency cap counts each address's claimed messages of every campaign: an index on
the message's normalized address and status (docs/adr/0086).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_message_address_status", "message", [sa.text("lower(trim(email))"), "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_address_status", "message")
