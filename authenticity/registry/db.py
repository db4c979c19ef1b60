"""Engines, sessions and migrations; the one place database errors are wrapped.

SQLite (the embedded default) runs in WAL mode and every transaction starts with
``BEGIN IMMEDIATE``: writers queue on the database lock instead of failing halfway,
which is what keeps log indices contiguous under concurrent processes. PostgreSQL
serialises log appends with a transaction-scoped advisory lock (see
:func:`lock_log`).

>>> engine = create_db_engine("sqlite://")
>>> engine.dialect.name
'sqlite'
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from authenticity.errors import ConfigError, RegistryError, RegistryUnavailableError, UsageError

__all__ = [
    "create_db_engine",
    "current_revision",
    "downgrade",
    "head_revision",
    "lock_log",
    "migrations_dir",
    "session_scope",
    "upgrade",
]

_LOG_LOCK_KEY = 0x61757468  # "auth": advisory lock id for log appends on PostgreSQL


def migrations_dir() -> Path:
    """The Alembic scripts: shipped inside the wheel, or the repository's ``migrations/``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigError("config.migrations.missing", "Alembic migrations not found next to the package")


def create_db_engine(url: str, *, timeout: float = 30.0) -> Engine:
    """An engine for *url* with our SQLite pragmas or PostgreSQL connect timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("config.database_url.invalid", f"cannot parse database URL {url!r}") from exc
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args["timeout"] = timeout
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(1, int(timeout))
    try:
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise ConfigError("config.database_url.invalid", f"unsupported database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            _enable_wal(cur, timeout)
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = "DEFERRED" if conn.get_execution_options().get("authenticity_read_only") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _enable_wal(cur: Any, timeout: float) -> None:
    """Switch a SQLite file to WAL once; the mode is persistent, so later connections only read it.

    Switching needs an exclusive lock and SQLite reports SQLITE_BUSY for it without calling the
    busy handler, so processes that open a fresh file at the same moment retry here until `timeout`.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _wrap(exc: SQLAlchemyError, engine: Engine) -> RegistryError:
    """Turn a driver error into one of ours with a stable code."""
    message = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    where = engine.url.render_as_string(hide_password=True)
    if isinstance(exc, OperationalError):
        if "locked" in message or "busy" in message:
            return RegistryUnavailableError("registry.database.locked", f"{where}: database is locked ({message})")
        if "no such table" in message or "does not exist" in message:
            return RegistryUnavailableError(
                "registry.schema.missing", f"{where}: schema is not migrated", hint="run: authenticity db upgrade"
            )
        return RegistryUnavailableError("registry.database.unreachable", f"{where}: {message}")
    if isinstance(exc, DBAPIError) and "append-only" in message:
        return RegistryError("registry.record.immutable", message)
    if isinstance(exc, DBAPIError) and ("UndefinedTable" in type(exc.orig).__name__ or "no such table" in message):
        return RegistryUnavailableError(
            "registry.schema.missing", f"{where}: schema is not migrated", hint="run: authenticity db upgrade"
        )
    return RegistryError("registry.database.error", f"{where}: {message}")


@contextlib.contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, wrap driver errors.

    Repositories never commit; this is the caller's transaction boundary. On SQLite a
    ``read_only`` transaction starts deferred, so readers (``verify``) are not blocked
    by a writer in WAL mode; every other transaction takes the write lock up front.
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    session = factory()
    try:
        if read_only:
            session.connection(execution_options={"authenticity_read_only": True})
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise _wrap(exc, engine) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock_log(session: Session) -> None:
    """Serialise log appends for the rest of this transaction.

    SQLite already holds the write lock (``BEGIN IMMEDIATE``); PostgreSQL takes a
    transaction-scoped advisory lock, released at commit or rollback.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOG_LOCK_KEY})


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str:
    """The newest migration shipped with this build."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise _wrap(exc, engine) from exc


def _run_alembic(engine: Engine, fn: Any, revision: str) -> None:
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two processes migrating at once would race on DDL; queue them.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOG_LOCK_KEY + 1})
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
    except CommandError as exc:
        raise UsageError("usage.revision.invalid", f"cannot migrate to {revision!r}: {exc}") from exc
    except SQLAlchemyError as exc:
        raise _wrap(exc, engine) from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the schema forward (idempotent)."""
    _run_alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the schema back (``base`` drops everything)."""
    _run_alembic(engine, command.downgrade, revision)
