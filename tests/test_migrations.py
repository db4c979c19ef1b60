"""Alembic migrations on real SQLite files and real PostgreSQL databases.

Upgrade from empty, downgrade to base (nothing left behind: no tables, triggers or
functions), upgrade again to the identical schema, the append-only triggers, the models
matching the migrated schema, and the ``authenticity db`` commands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.errors import RegistryError
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key
from authenticity.registry import db, repository
from authenticity.registry.models import Base, LogLeaf, LogNode, Record, TreeHead

TABLES = {
    "signer", "revocation", "record", "log_leaf", "log_node", "tree_head", "log_key", "perceptual_hash",
    "api_key", "flagged_item", "audit_event",
}  # fmt: skip
APPEND_ONLY = ("record", "log_leaf", "log_node", "tree_head", "log_key", "perceptual_hash", "audit_event")


# --------------------------------------------------------------------------- helpers


def _engine(url: str) -> Engine:
    return db.create_db_engine(url, timeout=5)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        else:
            rows = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
        return {r[0] for r in rows}


def _functions(engine: Engine) -> set[str]:
    """User-defined functions in the database's own schemas (PostgreSQL; SQLite has none)."""
    if engine.dialect.name == "sqlite":
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            )
        )
        return {r[0] for r in rows}


def _sequences(engine: Engine) -> set[str]:
    if engine.dialect.name == "sqlite":
        return set()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT relname FROM pg_class WHERE relkind = 'S'"))
        return {r[0] for r in rows}


def _schema(engine: Engine) -> dict[str, Any]:
    """Reflected names of everything that makes up the schema, per table."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": (insp.get_pk_constraint(table)["name"], tuple(insp.get_pk_constraint(table)["constrained_columns"])),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)
            ),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            "fks": sorted(
                (f["name"], tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in insp.get_foreign_keys(table)
            ),
        }
    return out


def _write_png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _create_signer(settings: Settings, name: str = "cam-1") -> Signer:
    assert settings.key_passphrase is not None
    passphrase = settings.key_passphrase.get_secret_value().encode()
    key = create_signer_key(settings, name, Algorithm.ED25519, passphrase)
    from authenticity.registry.store import open_registry

    with db.session_scope(open_registry(settings)) as session:
        repository.add_signer(session, name, key.public_key, datetime.now(UTC))
    return Signer(settings, name, passphrase)


def _counts(engine: Engine) -> dict[str, int]:
    with db.session_scope(engine) as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
                for m in (Record, LogLeaf, LogNode, TreeHead)}  # fmt: skip


# --------------------------------------------------------------------------- upgrade / downgrade


def test_upgrade_from_empty_creates_every_table_at_head(db_url: str) -> None:
    engine = _engine(db_url)
    assert db.current_revision(engine) is None
    assert _tables(engine) == set()
    db.upgrade(engine)
    assert _tables(engine) == TABLES | {"alembic_version"}
    assert db.current_revision(engine) == db.head_revision()
    expected_triggers = (
        {f"{t}_no_{a}" for t in APPEND_ONLY for a in ("update", "delete")}
        if engine.dialect.name == "sqlite"
        else {f"{t}_append_only" for t in APPEND_ONLY}
    )
    assert _triggers(engine) == expected_triggers
    if engine.dialect.name == "postgresql":
        assert "authenticity_append_only" in _functions(engine)
    db.upgrade(engine)  # idempotent
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_downgrade_to_base_leaves_nothing_and_upgrade_again_gives_the_same_schema(db_url: str) -> None:
    engine = _engine(db_url)
    functions_before, sequences_before = _functions(engine), _sequences(engine)
    db.upgrade(engine)
    first = _schema(engine)
    assert set(first) == TABLES | {"alembic_version"}

    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert _tables(engine) <= {"alembic_version"}
    assert _triggers(engine) == set()
    assert _functions(engine) == functions_before
    assert _sequences(engine) == sequences_before
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            leftovers = conn.execute(
                text(
                    "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
                )
            ).all()
        assert leftovers == []

    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert _schema(engine) == first
    engine.dispose()


def test_models_metadata_matches_the_migrated_schema(db_url: str) -> None:
    engine = _engine(db_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diffs = compare_metadata(context, Base.metadata)
    # No filtering needed: UTCDateTime compares as DateTime(timezone=True) on both backends.
    assert diffs == []
    engine.dispose()


# --------------------------------------------------------------------------- append-only triggers


@pytest.fixture
def signed(settings: Settings, tmp_path: Path) -> Signer:
    """A registry holding one signer and two signed records (so log_node has interior nodes)."""
    signer = _create_signer(settings)
    signer.sign(_write_png(tmp_path / "media" / "a.png", 1))
    signer.sign(_write_png(tmp_path / "media" / "b.png", 2))
    return signer


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE record SET size_bytes = 1",
        "DELETE FROM record",
        "UPDATE log_leaf SET leaf_hash = leaf_hash",
        "DELETE FROM log_leaf",
        "UPDATE log_node SET hash = hash",
        "DELETE FROM log_node",
        "UPDATE tree_head SET root_hash = root_hash",
        "DELETE FROM tree_head",
        "UPDATE perceptual_hash SET quality = 0",
        "DELETE FROM perceptual_hash",
    ],
)
def test_append_only_tables_refuse_update_and_delete(signed: Signer, statement: str) -> None:
    engine = signed.engine
    before = _counts(engine)
    with pytest.raises(RegistryError) as exc, db.session_scope(engine) as session:
        session.execute(text(statement))
    assert exc.value.code == "registry.record.immutable"
    assert "append-only" in exc.value.message
    # The raw driver error, without our wrapper, is refused by the database itself.
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert _counts(engine) == before
    with db.session_scope(engine) as session:
        assert session.scalar(select(func.min(Record.size_bytes))) != 1


def test_append_only_tables_still_accept_appends(signed: Signer, tmp_path: Path) -> None:
    result = signed.sign(_write_png(tmp_path / "media" / "c.png", 3))
    assert (result.leaf_index, result.tree_size) == (2, 3)
    assert _counts(signed.engine) == {"record": 3, "log_leaf": 3, "log_node": 4, "tree_head": 3}


def test_non_log_tables_stay_mutable(signed: Signer) -> None:
    with db.session_scope(signed.engine) as session:
        session.execute(text("UPDATE signer SET algorithm = algorithm"))


# --------------------------------------------------------------------------- CLI


def test_downgrade_below_0003_and_upgrade_again_refills_the_perceptual_hashes(signed: Signer) -> None:
    """Regression: the rows are copies of the signed manifests' hashes; a round trip through 0002
    dropped them for good, so near-matches vanished and ``log check`` failed."""
    from authenticity.provenance.keystore import trusted_log_key_ids
    from authenticity.registry.log_check import check_log
    from authenticity.registry.models import PerceptualHash

    def rows() -> list[tuple[int, int, bytes, int]]:
        with db.session_scope(signed.engine, read_only=True) as session:
            stmt = select(PerceptualHash.record_id, PerceptualHash.frame_index, PerceptualHash.hash,
                          PerceptualHash.quality).order_by(PerceptualHash.record_id)  # fmt: skip
            return [tuple(r) for r in session.execute(stmt)]  # type: ignore[misc]

    before = rows()
    assert len(before) == 2
    db.downgrade(signed.engine, "0002")
    assert "perceptual_hash" not in _tables(signed.engine)
    db.upgrade(signed.engine)
    assert rows() == before
    with db.session_scope(signed.engine) as session:
        report = check_log(session, trusted_log_key_ids(signed.settings))
    assert report.ok, report.problems


def test_cli_db_upgrade_current_downgrade(home: Path, db_url: str) -> None:
    runner = CliRunner()
    head = db.head_revision()

    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["empty", "(head:", f"{head})"]

    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"database at revision {head}" in result.stdout
    engine = _engine(db_url)
    assert _tables(engine) == TABLES | {"alembic_version"}

    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [head, "(head:", f"{head})"]

    result = runner.invoke(app, ["db", "upgrade"])  # idempotent
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["db", "downgrade"])  # the target is required
    assert result.exit_code == 2

    result = runner.invoke(app, ["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("database at revision")
    assert _tables(engine) <= {"alembic_version"}
    assert _triggers(engine) == set()
    assert db.current_revision(engine) is None

    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[0] == "empty"

    result = runner.invoke(app, ["db", "upgrade", head])
    assert result.exit_code == 0, result.output
    assert db.current_revision(engine) == head
    engine.dispose()


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_cli_db_unknown_revision_is_a_usage_error(home: Path, command: str) -> None:
    result = CliRunner().invoke(app, ["db", command, "ffff"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "ffff" in result.stderr
