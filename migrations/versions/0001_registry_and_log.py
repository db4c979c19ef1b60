"""Registry and transparency log: signer, revocation, record, log tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Reviewed by hand. Append-only tables get triggers that refuse UPDATE and DELETE, so a
bug or a careless operator cannot rewrite history through the application's connection;
a hostile DBA can drop the triggers, which is what ``authenticity log check`` is for.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("record", "log_leaf", "log_node", "tree_head")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signer"),
        sa.UniqueConstraint("name", name="uq_signer_name"),
        sa.UniqueConstraint("key_id", name="uq_signer_key_id"),
    )
    op.create_table(
        "revocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("revoked_at", TS, nullable=False),
        sa.Column("compromised_at", TS, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_revocation"),
        sa.ForeignKeyConstraint(["signer_id"], ["signer.id"], name="fk_revocation_signer_id_signer"),
        sa.UniqueConstraint("signer_id", name="uq_revocation_signer_id"),
    )
    op.create_table(
        "log_key",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_log_key"),
    )
    op.create_table(
        "record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(71), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("logged_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record"),
        sa.ForeignKeyConstraint(["signer_id"], ["signer.id"], name="fk_record_signer_id_signer"),
        sa.UniqueConstraint("content_digest", name="uq_record_content_digest"),
    )
    op.create_index("ix_record_signer_id", "record", ["signer_id"])
    op.create_table(
        "log_leaf",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_log_leaf"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], name="fk_log_leaf_record_id_record"),
        sa.UniqueConstraint("record_id", name="uq_log_leaf_record_id"),
    )
    op.create_table(
        "log_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index", name="pk_log_node"),
    )
    op.create_table(
        "tree_head",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_tree_head"),
        sa.ForeignKeyConstraint(["key_id"], ["log_key.key_id"], name="fk_tree_head_key_id_log_key"),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    for table in ("tree_head", "log_node", "log_leaf"):
        op.drop_table(table)
    op.drop_index("ix_record_signer_id", table_name="record")
    for table in ("record", "log_key", "revocation", "signer"):
        op.drop_table(table)


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION authenticity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'authenticity: % on % is not allowed (append-only table)', "
            "TG_OP, TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION authenticity_append_only()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'authenticity: {action} on {table} is not allowed "
                    "(append-only table)'); END"
                )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS authenticity_append_only()")
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
