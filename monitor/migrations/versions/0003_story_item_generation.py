"""Schema version 3: each story membership records the story-building round that wrote it.

A process that shares the database with others keeps the stories of its window in memory; when
others have written since, it now reads only the memberships written after the round it last saw
(``story_item.generation``) instead of every member of every changed story, so catching up costs
what the others added, not the size of the stories they touched (existing rows start at 0).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("story_item") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index(batch.f("ix_story_item_generation"), ["generation"], unique=False)
    op.execute(sa.text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))


def downgrade() -> None:
    with op.batch_alter_table("story_item") as batch:
        batch.drop_index(batch.f("ix_story_item_generation"))
        batch.drop_column("generation")
    op.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
