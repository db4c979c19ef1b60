"""Perceptual hashes of registered originals, for near-match verification.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Reviewed by hand. The rows copy the ``perceptual`` entries of each record's signed
manifest (PDQ of the image, or of each sampled video frame) so that the near-match
index loads in one query. They are append-only like the records they belong to; a
verifier still checks a near-match against the signed manifest, so a row inserted
by someone who dropped the trigger cannot make an unrelated file match an original.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "perceptual_hash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_perceptual_hash"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], name="fk_perceptual_hash_record_id_record"),
        sa.UniqueConstraint("record_id", "frame_index", name="uq_perceptual_hash_record_id"),
    )
    op.create_index("ix_perceptual_hash_record_id", "perceptual_hash", ["record_id"])
    _backfill()
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER perceptual_hash_append_only BEFORE UPDATE OR DELETE ON perceptual_hash "
            "FOR EACH ROW EXECUTE FUNCTION authenticity_append_only()"
        )
    elif dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER perceptual_hash_no_{action.lower()} BEFORE {action} ON perceptual_hash "
                f"BEGIN SELECT RAISE(ABORT, 'authenticity: {action} on perceptual_hash is not allowed "
                "(append-only table)'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS perceptual_hash_append_only ON perceptual_hash")
    elif dialect == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS perceptual_hash_no_{action}")
    op.drop_index("ix_perceptual_hash_record_id", table_name="perceptual_hash")
    op.drop_table("perceptual_hash")


def _backfill() -> None:
    """Rows from the manifests already registered (after a downgrade, the signed hashes are still there).

    Reads the stored JSON directly rather than through the application's models, which may have
    moved on since this revision was written.
    """
    bind = op.get_bind()
    record = sa.table("record", sa.column("id", sa.Integer()), sa.column("manifest", sa.LargeBinary()))
    target = sa.table(
        "perceptual_hash",
        sa.column("record_id", sa.Integer()), sa.column("frame_index", sa.Integer()),
        sa.column("algorithm", sa.String()), sa.column("hash", sa.LargeBinary()), sa.column("quality", sa.Integer()),
    )  # fmt: skip
    rows = []
    for record_id, manifest in bind.execute(sa.select(record.c.id, record.c.manifest).order_by(record.c.id)):
        entries = json.loads(bytes(manifest)).get("perceptual", [])
        rows += [
            {"record_id": record_id, "frame_index": i, "algorithm": e["algorithm"], "hash": bytes.fromhex(e["hash"]),
             "quality": e["quality"]}
            for i, e in enumerate(entries)
        ]  # fmt: skip
        if len(rows) >= 10_000:
            bind.execute(target.insert(), rows)
            rows = []
    if rows:
        bind.execute(target.insert(), rows)
