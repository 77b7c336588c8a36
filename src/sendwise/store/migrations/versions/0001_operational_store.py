"""The operational store: campaigns, messages, email events, suppressions, consents.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("campaign_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("planned_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_table(
        "message",
        sa.Column("message_key", sa.String(64), primary_key=True),
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("template", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("scheduled_at", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("campaign_id", "customer_id", name="uq_message_campaign_customer"),
    )
    op.create_index("ix_message_due", "message", ["campaign_id", "status", "scheduled_at"])
    op.create_index("ix_message_customer", "message", ["customer_id"])
    op.create_table(
        "email_event",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("email", sa.String(320)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("campaign_id", sa.String(64)),
        sa.Column("variant", sa.String(64)),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("user_agent", sa.Text),
        sa.Column("is_machine", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_email_event_campaign_type", "email_event", ["campaign_id", "type"])
    op.create_index(
        "ix_email_event_customer_type_time", "email_event", ["customer_id", "type", "occurred_at"]
    )
    op.create_table(
        "suppression",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint(
            "customer_id", "channel", "purpose", "recorded_at", name="uq_consent_change"
        ),
    )


def downgrade() -> None:
    for name in ("consent", "suppression", "email_event", "message", "campaign"):
        op.drop_table(name)
