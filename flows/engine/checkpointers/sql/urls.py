"""Connection strings: which database and driver, and how to name them safely.

Every message that names a database goes through :func:`redact`, which hides
the password wherever a URL can carry one (the netloc or the query string).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

#: The pip extra that installs each driver (see pyproject.toml).
DRIVER_EXTRAS = {
    "psycopg2": "postgres",
    "asyncpg": "asyncpg",
    "pymysql": "mysql",
    "aiomysql": "aiomysql",
    "aiosqlite": "aiosqlite",
}
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword"}


def secrets(url: URL) -> list[str]:
    found = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            found.extend([value] if isinstance(value, str) else value)
    return [secret for secret in found if secret]


def redact(url: URL) -> str:
    """The URL as text with its password (in the netloc or the query) hidden."""
    hidden = {key: "***" for key in url.query if key.lower() in _SECRET_QUERY_KEYS}
    if hidden:
        url = url.update_query_dict(hidden)
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def family_of(url: URL) -> str:
    name = url.get_backend_name()
    if name in ("mysql", "mariadb"):
        return "mysql"
    if name in ("postgresql", "sqlite"):
        return name
    raise ValueError(
        f"SQLCheckpointer supports PostgreSQL, MySQL/MariaDB and SQLite, not {name!r} "
        f"({redact(url)})"
    )


def is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def check_driver(dialect_cls: Any, url: URL) -> None:
    """Fails at construction, not at the first checkpoint, when a driver is missing."""
    driver, backend = url.get_driver_name(), f"{url.get_backend_name()}+{url.get_driver_name()}"
    extra = DRIVER_EXTRAS.get(driver)
    hint = f"pip install 'django-persistent-flows[{extra}]'" if extra else "install its DBAPI driver"
    try:
        dialect_cls.import_dbapi()
    except ImportError as exc:
        raise ImportError(
            f"SQLCheckpointer: the {backend} driver for {redact(url)} is not installed ({exc}); {hint}"
        ) from exc
    if getattr(dialect_cls, "is_async", False):
        try:
            import greenlet  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"SQLCheckpointer: async driver {backend} needs SQLAlchemy's asyncio "
                f"support (greenlet); {hint} or pip install 'sqlalchemy[asyncio]'"
            ) from exc


def needs_hex_blobs(url: URL) -> bool:
    """aiomysql cannot send ``bytes`` parameters with PyMySQL >= 1.2 (it calls
    a function PyMySQL removed); such blobs travel as hex and are decoded by
    ``UNHEX()`` in the statement."""
    if url.get_driver_name() != "aiomysql":
        return False
    from pymysql import converters

    return not callable(getattr(converters, "escape_bytes_prefixed", None))
