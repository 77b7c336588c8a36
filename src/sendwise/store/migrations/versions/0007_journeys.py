"""Journeys: definitions by version, one state row per customer and entry (indexed due time),
the step log with its idempotency key; a customer may have several messages of one campaign
(a journey's steps), so (campaign_id, customer_id) is indexed instead of unique.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "journey_state",
        sa.Column("state_id", sa.String(64), primary_key=True),
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("entry", sa.Integer, nullable=False),
        sa.Column("entry_key", sa.String(300), nullable=False, unique=True),
        sa.Column("step", sa.String(40)),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime),
        sa.Column("wake_at", sa.DateTime),
        sa.Column("waiting_for", sa.String(200)),
        sa.Column("arm", sa.String(40)),
        sa.Column("holdout", sa.Boolean, nullable=False),
        sa.Column("exit_reason", sa.String(64)),
        sa.Column("entered_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("converted_at", sa.DateTime),
        sa.Column("goal_value", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.DateTime),
        sa.UniqueConstraint("journey", "customer_id", "entry", name="uq_journey_state_entry"),
    )
    op.create_index("ix_journey_state_due", "journey_state", ["journey", "due_at"])
    op.create_index("ix_journey_state_customer", "journey_state", ["customer_id", "journey"])
    op.create_table(
        "journey_step",
        sa.Column("step_key", sa.String(64), primary_key=True),
        sa.Column("state_id", sa.String(64), nullable=False),
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("entry", sa.Integer, nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(200)),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_journey_step_journey", "journey_step", ["journey", "step"])
    # SQLite rebuilds the table for this, and cannot carry an expression index across
    op.drop_index("ix_message_address_status", "message")
    with op.batch_alter_table("message") as batch:
        batch.drop_constraint("uq_message_campaign_customer", type_="unique")
    op.create_index("ix_message_campaign_customer", "message", ["campaign_id", "customer_id"])
    op.create_index(
        "ix_message_address_status", "message", [sa.text("lower(trim(email))"), "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_campaign_customer", "message")
    op.drop_index("ix_message_address_status", "message")
    with op.batch_alter_table("message") as batch:
        batch.create_unique_constraint(
            "uq_message_campaign_customer", ["campaign_id", "customer_id"]
        )
    op.create_index(
        "ix_message_address_status", "message", [sa.text("lower(trim(email))"), "status"]
    )
    op.drop_index("ix_journey_step_journey", "journey_step")
    op.drop_table("journey_step")
    op.drop_index("ix_journey_state_customer", "journey_state")
    op.drop_index("ix_journey_state_due", "journey_state")
    op.drop_table("journey_state")
    op.drop_table("journey")
