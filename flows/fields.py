"""Model fields the storage and run models share."""

from __future__ import annotations

from typing import Any

from django.db import models


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
