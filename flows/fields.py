"""Model fields the storage and run models share, and the migration operation that brings them in."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


class ExactCharField(models.CharField):
    """A ``CharField`` that compares byte for byte on every database.

    MySQL/MariaDB's default collations (``utf8mb4_unicode_ci``,
    ``utf8mb4_0900_ai_ci``) fold case and accents, so session ``Ab`` would be
    session ``ab`` and state field ``A`` field ``a``; there the column takes
    ``utf8mb4_bin``. PostgreSQL's and SQLite's default comparisons are exact
    already. An explicit ``db_collation`` wins.
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        parameters = super().db_parameters(connection)
        if connection.vendor == "mysql" and self.db_collation is None:
            parameters["collation"] = "utf8mb4_bin"
        return parameters


class AlterFieldOnMySQL(migrations.AlterField):
    """``AlterField`` to an :class:`ExactCharField` from a ``CharField`` of the same length: only
    MySQL/MariaDB's columns change (their collation). Elsewhere the column is the same, and a plain
    ``AlterField`` would make SQLite copy the whole table for nothing."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "mysql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "mysql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
