"""A campaign's counts from its indexes alone: the console's campaign page (docs/adr/0156).

``ix_message_due`` (campaign_id, status, scheduled_at) becomes (campaign_id, status, variant,
scheduled_at) and ``ix_email_event_campaign_type`` (campaign_id, type) gains ``variant``,
``message_id`` and ``is_machine``: the two GROUP BYs of a campaign's counts read only these
indexes, in their order, never the tables' rows. Widened, not added: a send writes the same
index entries as before (the claim and the outcome already rewrite the status index entry; an
event already adds its campaign entry). The claim's ``scheduled_at IS NULL OR scheduled_at <=
now`` was never an index range (an OR): it is read from the index entry as before.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DUE = ["campaign_id", "status", "scheduled_at"]
BY_TYPE = ["campaign_id", "type"]


def upgrade() -> None:
    op.drop_index("ix_message_due", "message")
    op.create_index(
        "ix_message_due", "message", ["campaign_id", "status", "variant", "scheduled_at"]
    )
    op.drop_index("ix_email_event_campaign_type", "email_event")
    op.create_index(
        "ix_email_event_campaign_type",
        "email_event",
        [*BY_TYPE, "variant", "message_id", "is_machine"],
    )


def downgrade() -> None:
    op.drop_index("ix_email_event_campaign_type", "email_event")
    op.create_index("ix_email_event_campaign_type", "email_event", BY_TYPE)
    op.drop_index("ix_message_due", "message")
    op.create_index("ix_message_due", "message", DUE)
