"""The API's routes, under ``api/`` of wherever ``flows.urls`` is mounted (namespace ``flows-api``)."""

from __future__ import annotations

from django.urls import path, re_path

from . import runs, schema, views

app_name = "flows-api"

SESSION = "flows/<str:flow>/sessions/<str:session_id>/"

urlpatterns = [
    path("flows/", views.FlowListView.as_view(), name="flow-list"),
    path("flows/<str:flow>/", views.FlowDetailView.as_view(), name="flow-detail"),
    path("flows/<str:flow>/sessions/", views.SessionListView.as_view(), name="session-list"),
    path(SESSION, views.SessionDetailView.as_view(), name="session-detail"),
    path(SESSION + "invoke/", views.InvokeView.as_view(), name="session-invoke"),
    path(SESSION + "state/", views.StateView.as_view(), name="session-state"),
    path(SESSION + "reset/", views.ResetView.as_view(), name="session-reset"),
    path(SESSION + "checkpoints/", views.CheckpointListView.as_view(), name="checkpoint-list"),
    path(SESSION + "checkpoints/<str:checkpoint_id>/", views.CheckpointDetailView.as_view(), name="checkpoint-detail"),
    path(SESSION + "branches/", views.BranchListView.as_view(), name="branch-list"),
    path(SESSION + "stream/", runs.SessionStreamView.as_view(), name="session-stream"),
    path(SESSION + "runs/", runs.RunListView.as_view(), name="run-list"),
    path(SESSION + "runs/<str:run_id>/", runs.RunDetailView.as_view(), name="run-detail"),
    path(SESSION + "runs/<str:run_id>/wait/", runs.RunWaitView.as_view(), name="run-wait"),
    path(SESSION + "runs/<str:run_id>/cancel/", runs.RunCancelView.as_view(), name="run-cancel"),
    path(SESSION + "runs/<str:run_id>/stream/", runs.RunStreamView.as_view(), name="run-stream"),
    path("schema/", schema.SchemaView.as_view(), name="schema"),
    path("docs/", schema.DocsView.as_view(), name="docs"),
    # Anything else under api/ is a JSON 404, never Django's HTML page.
    re_path(r"^.*$", schema.no_such_route, name="no-such-route"),
]
