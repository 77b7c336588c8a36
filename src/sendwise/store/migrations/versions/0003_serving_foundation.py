"""The serving plane's foundation: API keys (hashed), the intake event log (one row per Segment
messageId) and the watermarks of its readers.

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
    op.create_table(
        "api_key",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("rate_per_second", sa.Float),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
    )
    op.create_table(
        "intake_event",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("event", sa.String(200)),
        sa.Column("user_id", sa.String(200)),
        sa.Column("anonymous_id", sa.String(200)),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("properties", sa.JSON),
        sa.Column("traits", sa.JSON),
        sa.Column("context", sa.JSON),
        sa.Column("source", sa.String(200)),
    )
    op.create_index("ix_intake_event_customer", "intake_event", ["customer_id", "seq"])
    op.create_index("ix_intake_event_anonymous", "intake_event", ["anonymous_id", "seq"])
    op.create_table(
        "watermark",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watermark")
    op.drop_index("ix_intake_event_anonymous", "intake_event")
    op.drop_index("ix_intake_event_customer", "intake_event")
    op.drop_table("intake_event")
    op.drop_table("api_key")
