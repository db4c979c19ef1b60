"""Alembic environment: runs on a connection handed in by ``authenticity.registry.db``
(``config.attributes["connection"]``) or, from the ``alembic`` command line, on the URL
from ``AUTHENTICITY_DATABASE_URL`` / the settings default."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from authenticity.registry.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from authenticity.config import Settings

    url = context.config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
