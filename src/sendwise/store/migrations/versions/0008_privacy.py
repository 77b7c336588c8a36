"""Privacy: proof on consent changes, the tombstone list, the audit log, frequency choices.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent") as batch:
        batch.add_column(sa.Column("legal_basis", sa.String(32)))
        batch.add_column(sa.Column("ip", sa.String(64)))
        batch.add_column(sa.Column("user_agent", sa.Text))
        batch.add_column(sa.Column("token", sa.String(64)))
    op.create_index("ix_consent_customer", "consent", ["customer_id"])
    op.create_table(
        "privacy_tombstone",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "privacy_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("subjects", sa.Integer, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "preference",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("preference")
    op.drop_table("privacy_audit")
    op.drop_table("privacy_tombstone")
    op.drop_index("ix_consent_customer", "consent")
    with op.batch_alter_table("consent") as batch:
        for name in ("token", "user_agent", "ip", "legal_basis"):
            batch.drop_column(name)
