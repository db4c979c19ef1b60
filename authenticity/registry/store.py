"""Opening the registry: one engine per process, migrated to head on first use.

>>> # engine = open_registry(Settings())
"""

from __future__ import annotations

from sqlalchemy import Engine

from authenticity.config import Settings
from authenticity.registry import db

__all__ = ["open_registry"]

_ENGINES: dict[tuple[str, float], Engine] = {}


def open_registry(settings: Settings, *, migrate: bool = True) -> Engine:
    """The engine for ``settings``' database, upgraded to the shipped schema if needed.

    Engines are cached per URL for the life of the process (connection pools are
    expensive; CLI commands and the API share one).
    """
    url = settings.resolved_database_url
    cache_key = (url, settings.db_timeout)
    engine = _ENGINES.get(cache_key)
    if engine is None:
        engine = db.create_db_engine(url, timeout=settings.db_timeout)
        if migrate and db.current_revision(engine) != db.head_revision():
            db.upgrade(engine)
        _ENGINES[cache_key] = engine
    return engine
