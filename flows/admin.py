"""Admin for sessions and checkpoints: browse, inspect, and repair sessions.

Built for large tables: list pages never run a ``COUNT(*)`` over a whole
table (the count is capped, the "show all" count is off), related rows come
with ``select_related``, the flow filter lists the registry instead of scanning
for distinct values, and a session page reads the head state and one page of
history in a constant number of queries whatever the session's length.
"""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from flows.engine import FlowError, InvalidInput, run_sync

from . import registry
from .admin_forms import InvokeForm, ResumeForm, StartSessionForm
from .conf import flows_settings
from .display import pretty_json, shown_history
from .graph_svg import graph_svg
from .models import Checkpoint, FlowSession
from .runs.recorder import current_origin

HISTORY_PAGE = 20


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` + 1 rows (a bounded subquery), never the whole table."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        capped = self.object_list[: self.cap + 1]
        return capped.count() if isinstance(capped, QuerySet) else len(capped)


class FlowNameFilter(admin.SimpleListFilter):
    """Filters by the registered flows (no ``SELECT DISTINCT`` over the sessions)."""

    title = _("flow")
    parameter_name = "flow_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in registry.flow_names()]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(flow_name=self.value()) if self.value() else queryset


def _belonging_to(form: forms.Form, form_id: str) -> forms.Form:
    """``form``'s inputs, drawn inside the change form, submit the ``<form id=form_id>`` placed after it."""
    for field in form.fields.values():
        field.widget.attrs["form"] = form_id
    return form


def _flow_or_none(name: str):
    try:
        return registry.get_flow(name)
    except registry.FlowNotFound:
        return None


@admin.register(FlowSession)
class FlowSessionAdmin(admin.ModelAdmin):
    list_display = ("session_id", "flow_name", "owner", "status", "checkpoint_count", "updated_at")
    list_filter = (FlowNameFilter, "status")
    list_select_related = ("owner",)
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedCountPaginator
    raw_id_fields = ("owner",)
    fields = (
        "flow_name", "session_id", "owner", "status", "last_error",
        "checkpoint_count", "created_at", "updated_at", "lease_until", "expires_at",
    )
    readonly_fields = (
        "flow_name", "session_id", "status", "last_error",
        "checkpoint_count", "created_at", "updated_at", "lease_until", "expires_at",
    )
    change_form_template = "admin/flows/flowsession/change_form.html"
    actions = ("reset_sessions",)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return ["=session_id", f"=owner__{get_user_model().USERNAME_FIELD}"]

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("start/", view(self.start_view), name="flows_flowsession_start"),
            path("<path:object_id>/invoke/", view(self.invoke_view), name="flows_flowsession_invoke"),
            path("<path:object_id>/resume/", view(self.resume_view), name="flows_flowsession_resume"),
            path("<path:object_id>/reset/", view(self.reset_view), name="flows_flowsession_reset"),
            *super().get_urls(),
        ]

    # ------------------------------------------------------------------ pages

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """Adding a session means starting one: see :meth:`start_view`."""
        return HttpResponseRedirect(reverse("admin:flows_flowsession_start"))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        session = self.get_object(request, object_id)
        context = self._flow_context(request, session) if session is not None else {}
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _flow_context(self, request: HttpRequest, session: FlowSession) -> dict[str, Any]:
        engine = _flow_or_none(session.flow_name)
        if engine is None:
            return {"flow_missing": True}
        before = request.GET.get("before") or None

        async def read() -> tuple[Any, Any]:
            state = await engine.get_state(session.session_id)
            page = await engine.history(session.session_id, limit=HISTORY_PAGE, before=before)
            return state, shown_history(page)

        try:
            state, history = run_sync(read())
        except FlowError as exc:
            return {"flow_error": str(exc)}
        pending = (state or {}).pop("__interrupt__", None)
        return {
            "flow": engine,
            "head_state": pretty_json(state) if state is not None else None,
            "pending": [{**q, "value_json": pretty_json(q.get("value"))} for q in pending or ()],
            "history": history,
            "mermaid": engine.to_mermaid(),
            "graph": graph_svg(engine, title=session.flow_name),
            "details": engine.details(),
            "invoke_form": _belonging_to(InvokeForm(), "flows-invoke"),
            "resume_form": _belonging_to(ResumeForm(), "flows-resume"),
            "has_messages": "messages" in engine.state_fields,
        }

    @method_decorator(transaction.non_atomic_requests)
    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartSessionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            session, created = FlowSession.objects.get_or_create(
                flow_name=data["flow"], session_id=data["session_id"], defaults={"owner_id": data["owner"]}
            )
            if self._run(request, session, data["apply_state"], form=form):
                if not created:
                    messages.info(request, _("Session “%(id)s” already existed: the input continued it.")
                                  % {"id": session.session_id})
                return HttpResponseRedirect(reverse("admin:flows_flowsession_change", args=[session.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Start a session"),
            "form": form,
        }
        return TemplateResponse(request, "admin/flows/flowsession/start.html", context)

    # ------------------------------------------------------------------ actions on one session

    def _session_for_action(self, request: HttpRequest, object_id: str) -> FlowSession:
        session = get_object_or_404(FlowSession, pk=object_id)
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        return session

    def _back(self, session: FlowSession) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:flows_flowsession_change", args=[session.pk]))

    def _run(
        self, request: HttpRequest, session: FlowSession, apply_state: Any, *, form: Any = None, **kwargs: Any
    ) -> bool:
        """Runs the flow; a bad input becomes an error of ``form`` (when given), others a message."""
        engine = _flow_or_none(session.flow_name)
        if engine is None:
            self.message_user(request, _("Flow %s is not registered.") % session.flow_name, messages.ERROR)
            return False
        origin = current_origin.set("admin")  # how the run is recorded
        try:
            result = engine.sync.invoke(
                apply_state, session_id=session.session_id, on_busy=flows_settings.ON_BUSY, **kwargs
            )
        except InvalidInput as exc:
            if form is None:
                self.message_user(request, f"{type(exc).__name__}: {exc}", messages.ERROR)
            else:
                form.add_input_error(exc)
            return False
        except FlowError as exc:
            self.message_user(request, f"{type(exc).__name__}: {exc}", messages.ERROR)
            return False
        finally:
            current_origin.reset(origin)
        if "__interrupt__" in result:
            self.message_user(request, _("The run is waiting for an answer."), messages.WARNING)
        else:
            self.message_user(request, _("The run finished."), messages.SUCCESS)
        return True

    @method_decorator(require_POST)
    @method_decorator(transaction.non_atomic_requests)
    def invoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        session = self._session_for_action(request, object_id)
        form = InvokeForm(request.POST, flow=_flow_or_none(session.flow_name))
        if form.is_valid() and self._run(request, session, form.cleaned_data["apply_state"], form=form):
            return self._back(session)
        if form.errors:  # the session page again, with the form and what is wrong with it
            page = copy.copy(request)
            page.method, page.POST = "GET", QueryDict()
            return self.change_view(page, object_id, extra_context={"invoke_form": _belonging_to(form, "flows-invoke")})
        return self._back(session)

    @method_decorator(require_POST)
    @method_decorator(transaction.non_atomic_requests)
    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        session = self._session_for_action(request, object_id)
        form = ResumeForm(request.POST)
        if not form.is_valid():
            self.message_user(request, _("Give an answer."), messages.ERROR)
        else:
            self._run(request, session, None, resume=form.cleaned_data["answer"])
        return self._back(session)

    @method_decorator(require_POST)
    @method_decorator(transaction.non_atomic_requests)
    def reset_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        session = self._session_for_action(request, object_id)
        if self._reset(request, session):
            self.message_user(request, _("The session was reset."), messages.SUCCESS)
        return self._back(session)

    def _reset(self, request: HttpRequest, session: FlowSession) -> bool:
        engine = _flow_or_none(session.flow_name)
        if engine is None:
            self.message_user(request, _("Flow %s is not registered.") % session.flow_name, messages.ERROR)
            return False
        try:
            engine.sync.reset_session(session.session_id)
        except FlowError as exc:
            self.message_user(request, f"{type(exc).__name__}: {exc}", messages.ERROR)
            return False
        return True

    @admin.action(description=_("Reset the selected sessions (delete their checkpoints)"), permissions=["change"])
    def reset_sessions(self, request: HttpRequest, queryset: Any) -> None:
        done = sum(self._reset(request, session) for session in queryset)
        self.message_user(request, _("%d session(s) reset.") % done, messages.SUCCESS)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Read-only: checkpoints change only through the flows that wrote them."""

    list_display = ("checkpoint_id", "session", "seq", "node", "created_at")
    list_select_related = ("session",)
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedCountPaginator
    search_fields = ("=checkpoint_id", "=session__session_id")
    fields = ("checkpoint_id", "session_link", "seq", "parent_id", "run_id", "node", "created_at", "details")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("blob")

    @admin.display(description=_("session"))
    def session_link(self, obj: Checkpoint) -> str:
        url = reverse("admin:flows_flowsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session)

    @admin.display(description=_("metadata, state and changes"))
    def details(self, obj: Checkpoint) -> str:
        engine = _flow_or_none(obj.session.flow_name)
        if engine is None:
            return gettext("The flow is not registered: the checkpoint cannot be decoded.")
        try:
            checkpoint = engine.sync.get_checkpoint(obj.session.session_id, obj.checkpoint_id)
        except FlowError as exc:
            return f"{type(exc).__name__}: {exc}"
        if checkpoint is None:
            return "-"
        payload = {
            "metadata": checkpoint.metadata.to_dict(),
            "changes": {name: {"op": change.op, "value": change.value} for name, change in checkpoint.changes.items()},
            "state": checkpoint.state,
        }
        return format_html("<pre>{}</pre>", pretty_json(payload))
