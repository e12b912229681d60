"""Schema version 2: several service processes share one database.

``report_run`` records each weekly report made, one row per week, so that when several processes
share the work exactly one of them writes it; ``feed.claimed_by`` names the process that took a feed
for its current poll, for ``monitor feeds list`` and for diagnosing a stuck claim; ``story.generation``
numbers the story-building round that last changed a story, so a process whose cached stories are
out of date reloads only the ones changed since (existing stories start at 0).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_run",
        sa.Column("week", AutoString(), nullable=False),
        sa.Column("path", AutoString(), nullable=False),
        sa.Column("made_by", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week"),
    )
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("claimed_by", AutoString(), nullable=True))
    with op.batch_alter_table("story") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index(batch.f("ix_story_generation"), ["generation"], unique=False)
    op.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))


def downgrade() -> None:
    with op.batch_alter_table("story") as batch:
        batch.drop_index(batch.f("ix_story_generation"))
        batch.drop_column("generation")
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("claimed_by")
    op.drop_table("report_run")
    op.execute(sa.text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
