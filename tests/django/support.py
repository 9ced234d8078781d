"""Helpers that let the storage conformance suite drive ``DjangoCheckpointer``.

A backend spec must rebuild the same checkpointer in a subprocess (the
cross-process lock tests), where Django is not set up yet: the spec carries the
test database's settings, and :func:`create_checkpointer` configures Django
with them first when the process has no settings of its own.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

#: What a bare process needs to use the checkpointer's models.
MINIMAL_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "flows"]


def use_pymysql() -> None:
    """Django's MySQL backend on PyMySQL (pinned for the SQL checkpointer) instead of mysqlclient,
    which needs the client library's headers to build; Django's backend takes it as MySQLdb."""
    import pymysql

    pymysql.install_as_MySQLdb()


def database_settings(alias: str) -> dict[str, Any]:
    """The (test) database ``alias`` as JSON-able settings."""
    from django.db import connections

    return {key: value for key, value in connections[alias].settings_dict.items() if key != "TEST"}


def create_checkpointer(*, database: dict[str, Any] | None = None, models_app: str | None = None, **kwargs: Any):
    """A ``DjangoCheckpointer``; in a fresh process, Django is configured on ``database``.

    ``models_app`` names an app whose ``FlowSession``, ``Checkpoint`` and
    ``CheckpointWrite`` replace flows' own (``"storeapp"``: tests/storeapp).
    """
    from django.apps import apps

    if not apps.ready:
        if not settings.configured:
            using = kwargs.get("using", "default")
            databases = {"default": database, using: database} if database else {}
            if database and database["ENGINE"] == "django.db.backends.mysql":
                use_pymysql()
            installed = MINIMAL_APPS + ([f"tests.{models_app}"] if models_app else [])
            settings.configure(DATABASES=databases, INSTALLED_APPS=installed, USE_TZ=True, SECRET_KEY="flows-tests")
        django.setup()
    from flows.checkpointer import DjangoCheckpointer

    if models_app:
        kwargs.update(
            session_model=f"{models_app}.FlowSession",
            checkpoint_model=f"{models_app}.Checkpoint",
            write_model=f"{models_app}.CheckpointWrite",
        )
    return DjangoCheckpointer(**kwargs)
