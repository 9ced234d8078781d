"""SQL checkpointer (SQLAlchemy 2 Core): PostgreSQL, MySQL/MariaDB and SQLite.

``from flows.engine.checkpointers.sql import SQLCheckpointer``. The package is
split by job: :mod:`.schema` (tables), :mod:`.statements` (SQL),
:mod:`.database` (engines, threads, errors) and :mod:`.store` (the primitives).
"""

from __future__ import annotations

try:
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "SQLCheckpointer needs SQLAlchemy 2: pip install 'django-persistent-flows[sql]' "
        "(or the extra of your driver: postgres, asyncpg, mysql, aiomysql, aiosqlite)"
    ) from exc

from .store import SQLCheckpointer, SQLStore

__all__ = ["SQLCheckpointer", "SQLStore"]
