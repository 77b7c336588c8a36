"""Serving snapshots: versioned copies of profiles, scores, segments, recommendations,
products and item-item neighbours, the pointer to the version in use, and the open-time
content choices (``live_slot``).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _version() -> sa.Column:
    return sa.Column("version", sa.Integer, primary_key=True, autoincrement=False)


def _id(name: str) -> sa.Column:
    return sa.Column(name, sa.String(200), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "snapshot",
        _version(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime),
        sa.Column("as_of", sa.DateTime),
        sa.Column("data_end", sa.DateTime),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_table(
        "snapshot_current",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("switched_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "snapshot_profile",
        _version(),
        _id("customer_id"),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("segments", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
    )
    op.create_table("snapshot_segment_member", _version(), _id("segment"), _id("customer_id"))
    op.create_table(
        "snapshot_recommendation",
        _version(),
        _id("customer_id"),
        sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("source", sa.String(64)),
    )
    op.create_table(
        "snapshot_product",
        _version(),
        _id("product_id"),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "snapshot_similar",
        _version(),
        _id("product_id"),
        sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("other_id", sa.String(200), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
    )
    op.create_table(
        "live_slot",
        sa.Column("message_key", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("product_id", sa.String(200), nullable=False),
        sa.Column("chosen_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "live_slot",
        "snapshot_similar",
        "snapshot_product",
        "snapshot_recommendation",
        "snapshot_segment_member",
        "snapshot_profile",
        "snapshot_current",
        "snapshot",
    ):
        op.drop_table(name)
