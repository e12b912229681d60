"""Schema version 1: feeds, items and labels, stories, tallies, chains, alerts, poll log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, nullable: bool = False, length: int | None = None) -> sa.Column:
    return sa.Column(name, AutoString(length=length), nullable=nullable)


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _float(name: str) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=False)


def _cascade(column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE")


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table("meta", _text("key"), _text("value"), sa.PrimaryKeyConstraint("key"))
    op.create_table(
        "feed",
        _text("id"),
        _text("url"),
        _text("name"),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("parked", sa.Boolean(), nullable=False),
        _int("interval_s"),
        _text("etag", True),
        _text("last_modified", True),
        _when("next_check_at", True),
        _when("last_checked_at", True),
        _when("last_success_at", True),
        _int("error_count"),
        _text("last_error_kind", True),
        _text("last_error", True),
        _int("ttl_s", True),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("feed", "next_check_at")
    op.create_table(
        "item",
        _int("id"),
        _text("key", length=64),
        _text("feed_id", True),
        _text("source"),
        _text("guid", True),
        _text("link", True),
        _text("title"),
        _text("summary"),
        _when("published_at"),
        _when("fetched_at"),
        sa.ForeignKeyConstraint(["feed_id"], ["feed.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    _index("item", "feed_id")
    _index("item", "published_at")
    op.create_table(
        "label",
        _int("item_id"),
        _text("label"),
        _float("score_attack"),
        _float("score_retaliation"),
        _float("score_de_escalation"),
        _float("score_other"),
        _text("evidence"),
        _text("note"),
        _text("model_version"),
        _when("labelled_at"),
        _cascade("item_id", "item.id"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    _index("label", "label")
    op.create_table(
        "correction",
        _int("item_id"),
        _text("label"),
        _when("created_at"),
        _cascade("item_id", "item.id"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_table(
        "item_theatre",
        _int("item_id"),
        _text("theatre_id"),
        _cascade("item_id", "item.id"),
        sa.PrimaryKeyConstraint("item_id", "theatre_id"),
    )
    _index("item_theatre", "theatre_id")
    _story_tables()
    _alert_tables()
    _poll_log()


def _story_tables() -> None:
    op.create_table(
        "story",
        _int("id"),
        _text("label"),
        _when("first_at"),
        _when("last_at"),
        _int("n_items"),
        _text("title"),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("story", "first_at")
    _index("story", "label")
    op.create_table(
        "story_item",
        _int("item_id"),
        _int("story_id"),
        _cascade("item_id", "item.id"),
        _cascade("story_id", "story.id"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    _index("story_item", "story_id")
    op.create_table(
        "story_theatre",
        _int("story_id"),
        _text("theatre_id"),
        _cascade("story_id", "story.id"),
        sa.PrimaryKeyConstraint("story_id", "theatre_id"),
    )
    _index("story_theatre", "theatre_id")
    op.create_table(
        "tally",
        _int("item_id"),
        _int("number"),
        _text("what"),
        _text("target"),
        _text("since"),
        sa.Column("ordinal", sa.Boolean(), nullable=False),
        _when("published_at"),
        _cascade("item_id", "item.id"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    _index("tally", "published_at")
    op.create_table(
        "chain_link",
        _int("retaliation_id"),
        _int("attack_id"),
        _float("lag_hours"),
        _float("score"),
        _cascade("attack_id", "story.id"),
        _cascade("retaliation_id", "story.id"),
        sa.PrimaryKeyConstraint("retaliation_id", "attack_id"),
    )


def _alert_tables() -> None:
    op.create_table(
        "alert",
        _int("id"),
        _text("theatre"),
        _text("label"),
        sa.Column("day", sa.Date(), nullable=False),
        _text("kind"),
        _float("observed"),
        _float("expected"),
        _float("upper"),
        _float("p_value"),
        _text("severity"),
        _when("created_at"),
        _when("delivered_at", True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("theatre", "label", "day", "kind"),
    )
    _index("alert", "day")
    op.create_table(
        "alert_delivery",
        _int("alert_id"),
        _text("channel"),
        _when("delivered_at"),
        _int("attempts"),
        _cascade("alert_id", "alert.id"),
        sa.PrimaryKeyConstraint("alert_id", "channel"),
    )


def _poll_log() -> None:
    op.create_table(
        "poll_log",
        _int("id"),
        _text("feed_id"),
        _when("at"),
        _int("status", True),
        _int("new"),
        _int("seen"),
        sa.Column("not_modified", sa.Boolean(), nullable=False),
        _text("error_kind", True),
        _text("error", True),
        _text("bozo", True),
        _int("duration_ms"),
        sa.ForeignKeyConstraint(["feed_id"], ["feed.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("poll_log", "at")
    _index("poll_log", "feed_id")
    op.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))


def downgrade() -> None:
    for table in (
        "poll_log",
        "alert_delivery",
        "alert",
        "chain_link",
        "tally",
        "story_theatre",
        "story_item",
        "story",
        "item_theatre",
        "correction",
        "label",
        "item",
        "feed",
        "meta",
    ):
        op.drop_table(table)
