"""Consent per address and the send policy at claim time: the address a consent change is
for, each message's time zone (quiet hours), and the indexes the claim's lookups use.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message", sa.Column("timezone", sa.String(64)))
    op.add_column("consent", sa.Column("email", sa.String(320)))
    op.create_index("ix_consent_email", "consent", ["email", "channel", "purpose"])
    op.create_index(
        "ix_email_event_address_type_time",
        "email_event",
        [sa.text("lower(trim(email))"), "type", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_email_event_address_type_time", "email_event")
    op.drop_index("ix_consent_email", "consent")
    with op.batch_alter_table("consent") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("timezone")
