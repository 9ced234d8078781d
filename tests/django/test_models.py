"""The models: constraints, shipped migrations, importability of the abstract bases."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError

from flows.models import Checkpoint, CheckpointWrite, FlowSession, SessionStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = StringIO()
    call_command("makemigrations", "flows", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_session_id_is_unique_per_flow():
    FlowSession.objects.create(flow_name="a", session_id="s1")
    FlowSession.objects.create(flow_name="b", session_id="s1")
    with pytest.raises(IntegrityError):
        FlowSession.objects.create(flow_name="a", session_id="s1")


@pytest.mark.django_db
def test_defaults_and_str():
    session = FlowSession.objects.create(flow_name="support", session_id="s1")
    assert str(session) == "support/s1"
    assert session.status == SessionStatus.IDLE
    assert (session.last_seq, session.checkpoint_count, session.lease_token) == (0, 0, 0)
    assert session.head is None


def test_checkpoint_and_write_str():
    assert str(Checkpoint(checkpoint_id="abc")) == "abc"
    assert str(CheckpointWrite(field="messages", seq=3)) == "messages@3"


def test_abstract_bases_import_without_the_app_installed():
    code = (
        "import django; from django.conf import settings;"
        "settings.configure(INSTALLED_APPS=['django.contrib.auth', 'django.contrib.contenttypes']);"
        "django.setup();"
        "from flows.base_models import AbstractFlowSession, AbstractCheckpoint, AbstractCheckpointWrite;"
        "assert AbstractFlowSession._meta.abstract"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
async def test_the_abstract_models_subclassed_in_another_app_keep_their_relations_there():
    from asgiref.sync import sync_to_async

    from flows.checkpointer import DjangoCheckpointer
    from tests.flows_fixtures import seed_flow
    from tests.storeapp import models as own

    assert own.Checkpoint._meta.get_field("session").related_model is own.FlowSession
    assert own.CheckpointWrite._meta.get_field("session").related_model is own.FlowSession
    assert own.FlowSession._meta.get_field("head").related_model is own.Checkpoint
    assert FlowSession._meta.get_field("head").related_model is Checkpoint  # flows' own stay flows'

    checkpointer = DjangoCheckpointer(
        "own-tables", session_model="storeapp.FlowSession", checkpoint_model=own.Checkpoint,
        write_model="storeapp.CheckpointWrite",
    )
    flow = seed_flow(checkpointer)
    await flow.invoke({"messages": ["hi"], "status": "s", "counter": 0}, session_id="mine")

    def counts() -> tuple:
        row = own.FlowSession.objects.get(flow_name="own-tables", session_id="mine")
        return (row.head.node, row.checkpoints.count(), row.writes.count() > 0, row.tenant,
                FlowSession.objects.filter(flow_name="own-tables").exists())

    assert await sync_to_async(counts)() == ("count", 2, True, "", False)
