"""ExactCharField (flows.fields): identifiers compare byte for byte on every database."""

from __future__ import annotations

import pytest
from django.db import connections

from flows.models import CheckpointWrite, FlowSession, Run

pytestmark = pytest.mark.django_db(databases=["default", "mariadb", "postgres"])

EXACT = [(FlowSession, "flow_name"), (FlowSession, "session_id"), (CheckpointWrite, "field"),
         (Run, "flow_name"), (Run, "session_id")]


@pytest.mark.parametrize("model,name", EXACT)
def test_the_column_is_binary_on_mariadb(model, name):
    with connections["mariadb"].cursor() as cursor:
        cursor.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = %s",
            [model._meta.db_table, model._meta.get_field(name).column],
        )
        assert cursor.fetchone() == ("utf8mb4_bin",)


def test_other_columns_keep_the_database_default_on_mariadb():
    with connections["mariadb"].cursor() as cursor:
        cursor.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = 'status'",
            [FlowSession._meta.db_table],
        )
        assert cursor.fetchone() != ("utf8mb4_bin",)


@pytest.mark.parametrize("alias", ["default", "postgres", "mariadb"])
def test_names_that_differ_only_in_case_are_two_rows(alias):
    sessions = FlowSession.objects.using(alias)
    sessions.create(flow_name="exact", session_id="Case-1")
    sessions.create(flow_name="exact", session_id="case-1")  # no unique-constraint clash
    assert sessions.filter(flow_name="exact", session_id="case-1").count() == 1
    assert sessions.filter(flow_name="EXACT").count() == 0


def test_an_explicit_collation_wins():
    from flows.fields import ExactCharField

    field = ExactCharField(max_length=10, db_collation="utf8mb4_general_ci")
    assert field.db_parameters(connections["mariadb"])["collation"] == "utf8mb4_general_ci"
    assert ExactCharField(max_length=10).db_parameters(connections["default"])["collation"] is None
