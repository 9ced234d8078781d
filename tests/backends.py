"""The checkpointer backends every conformance test runs against.

A backend is described by a :class:`BackendSpec` (JSON-able, so subprocesses in
the cross-process tests can rebuild the same checkpointer). Adding a backend
means adding one entry to :func:`backend_specs`.

The servers come from ``scripts/with-test-services`` (``make test``); a missing
server URL is a loud setup failure, never a skip.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

SERVICE_ENV = {
    "redis": "FLOWS_TEST_REDIS_URL",
    "postgres": "FLOWS_TEST_POSTGRES_URL",
    "mariadb": "FLOWS_TEST_MARIADB_URL",
}


def service_url(service: str) -> str:
    variable = SERVICE_ENV[service]
    url = os.environ.get(variable)
    if not url:
        raise RuntimeError(
            f"{variable} is not set: the {service} server is missing. Run the tests with "
            "`make test` (or scripts/with-test-services pytest ...), which starts it."
        )
    return url


@dataclass(frozen=True)
class BackendSpec:
    """How to build one checkpointer: a class path plus constructor arguments."""

    name: str
    factory: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def create(self, **options: Any):
        module, _, attr = self.factory.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        return cls(*self.args, **{**self.kwargs, **options})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BackendSpec:
        data = json.loads(text)
        return cls(data["name"], data["factory"], tuple(data["args"]), data["kwargs"])


def _with_driver(url: str, driver: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


def backend_specs(tmp_dir: str) -> dict[str, Any]:
    """Name -> zero-argument callable returning a fresh :class:`BackendSpec`.

    Each call isolates its data (a new Redis prefix, new SQL tables, a new file),
    so tests do not see each other's sessions or stats.
    """
    unique = lambda: uuid.uuid4().hex[:10]  # noqa: E731
    sql = "flows.engine.checkpointers.sql:SQLCheckpointer"

    def sqlite(driver: str | None):
        def make() -> BackendSpec:
            scheme = "sqlite" if driver is None else f"sqlite+{driver}"
            return BackendSpec(f"sqlite-{driver or 'pysqlite'}", sql, (f"{scheme}:///{tmp_dir}/{unique()}.db",))

        return make

    def server_sql(service: str, driver: str):
        def make() -> BackendSpec:
            url = _with_driver(service_url(service), driver)
            return BackendSpec(f"{service}-{driver}", sql, (url,), {"table_prefix": f"t{unique()}_"})

        return make

    def django_orm(database: str, alias: str, models_app: str | None = None):
        # A new flow name isolates each test's sessions and stats in the shared tables.
        def make() -> BackendSpec:
            from tests.django.support import database_settings

            if database != "sqlite":
                service_url(database)
            options = {"flow_name": f"t{unique()}", "using": alias, "database": database_settings(alias)}
            if models_app:
                options["models_app"] = models_app
            return BackendSpec(
                f"django-{models_app or database}", "tests.django.support:create_checkpointer", (), options
            )

        return make

    return {
        "memory": lambda: BackendSpec("memory", "flows.engine.checkpointers.memory:InMemoryCheckpointer"),
        # a store written from the public Store protocol alone (tests/dict_store.py)
        "dict-store": lambda: BackendSpec("dict-store", "tests.dict_store:dict_checkpointer"),
        "redis": lambda: BackendSpec(
            "redis",
            "flows.engine.checkpointers.redis:RedisCheckpointer",
            (),
            {"redis_url": service_url("redis"), "prefix": f"t{unique()}:"},
        ),
        "sqlite": sqlite(None),
        "sqlite-aiosqlite": sqlite("aiosqlite"),
        "postgres-psycopg2": server_sql("postgres", "psycopg2"),
        "postgres-asyncpg": server_sql("postgres", "asyncpg"),
        "mariadb-pymysql": server_sql("mariadb", "pymysql"),
        "mariadb-aiomysql": server_sql("mariadb", "aiomysql"),
        "django-sqlite": django_orm("sqlite", "default"),
        "django-postgres": django_orm("postgres", "postgres"),
        "django-mariadb": django_orm("mariadb", "mariadb"),
        # flows.base_models subclassed in another app (tests/storeapp), on SQLite
        "django-storeapp": django_orm("sqlite", "default", "storeapp"),
    }


#: Backends whose data lives outside the Python process (reloadable by a second instance).
DURABLE = {
    "redis", "sqlite", "sqlite-aiosqlite",
    "postgres-psycopg2", "postgres-asyncpg", "mariadb-pymysql", "mariadb-aiomysql",
}
DURABLE |= {"django-sqlite", "django-postgres", "django-mariadb", "django-storeapp"}


def selected_backends() -> list[str]:
    """All backends, or the comma-separated ``FLOWS_TEST_BACKENDS`` while developing one."""
    chosen = os.environ.get("FLOWS_TEST_BACKENDS")
    names = list(backend_specs("/tmp"))
    if not chosen:
        return names
    wanted = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = set(wanted) - set(names)
    if unknown:
        raise RuntimeError(f"FLOWS_TEST_BACKENDS names unknown backends: {sorted(unknown)}")
    return wanted


def backend_params(durable_only: bool = False) -> list:
    """``selected_backends()`` (or only the durable ones) as pytest params; Django backends get database access.

    The ``django_db`` mark must be there at collection time: pytest-django
    decides which test databases to create from the collected marks.
    """
    import pytest

    marks = {name: [pytest.mark.django_db(transaction=True)] for name in ("django-sqlite", "django-storeapp")}
    for service in ("postgres", "mariadb"):
        if os.environ.get(SERVICE_ENV[service]):
            # with default: its test database is made first (Django's TEST DEPENDENCIES), and migrations use it
            marks[f"django-{service}"] = [pytest.mark.django_db(transaction=True, databases=["default", service])]
    names = [name for name in selected_backends() if name in DURABLE or not durable_only]
    return [pytest.param(name, marks=marks.get(name, ())) for name in names]
