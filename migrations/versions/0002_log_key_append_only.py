"""Make ``log_key`` append-only too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Reviewed by hand. A log key, once used to sign tree heads, must never be replaced
under the same id: verifiers pin key ids from outside the database, and this trigger
keeps an honest operator's mistakes from silently orphaning signed heads.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER log_key_append_only BEFORE UPDATE OR DELETE ON log_key "
            "FOR EACH ROW EXECUTE FUNCTION authenticity_append_only()"
        )
    elif dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER log_key_no_{action.lower()} BEFORE {action} ON log_key "
                f"BEGIN SELECT RAISE(ABORT, 'authenticity: {action} on log_key is not allowed "
                "(append-only table)'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS log_key_append_only ON log_key")
    elif dialect == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS log_key_no_{action}")
