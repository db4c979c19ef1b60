"""HTTP API keys, flagged content and the audit event chain.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Reviewed by hand. ``api_key`` stores only SHA-256 digests of the secrets (they are 256-bit
random tokens, so a slow password hash buys nothing). ``flagged_item`` is the mutable review
queue; its history lives in ``audit_event``, which is append-only (triggers) and hash-chained,
each event signed with the log key, so ``authenticity audit check`` detects edits and deletions
even by someone who drops the triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.ForeignKeyConstraint(["signer_id"], ["signer.id"], name="fk_api_key_signer_id_signer"),
        sa.UniqueConstraint("name", name="uq_api_key_name"),
        sa.UniqueConstraint("secret_hash", name="uq_api_key_secret_hash"),
    )
    op.create_table(
        "flagged_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(71), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("media_path", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("decision", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_flagged_item"),
        sa.UniqueConstraint("content_digest", name="uq_flagged_item_content_digest"),
    )
    op.create_index("ix_flagged_item_status", "flagged_item", ["status"])
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("event_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
        sa.ForeignKeyConstraint(["item_id"], ["flagged_item.id"], name="fk_audit_event_item_id_flagged_item"),
    )
    op.create_index("ix_audit_event_item_id", "audit_event", ["item_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION authenticity_append_only()"
        )
    elif dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{action.lower()} BEFORE {action} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, 'authenticity: {action} on audit_event is not allowed "
                "(append-only table)'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
    elif dialect == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_event_no_{action}")
    op.drop_index("ix_audit_event_item_id", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_flagged_item_status", table_name="flagged_item")
    op.drop_table("flagged_item")
    op.drop_table("api_key")
