"""The UI's pages, beside ``api/`` wherever ``flows.urls`` is mounted (namespace ``flows-ui``)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "flows-ui"

urlpatterns = [
    path("", views.home, name="home"),
    path("flows/<str:flow>/sessions/<str:session_id>/", views.conversation, name="conversation"),
]
