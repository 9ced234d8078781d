"""Forms behind the admin's flow actions: start a session, invoke, answer a question."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from flows.engine import FlowEngine, InvalidInput
from flows.engine.ids import SESSION_ID_PATTERN

from . import registry


def parse_json(text: str, *, what: str | Promise) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(_("%(what)s is not valid JSON: %(error)s"), params={"what": what, "error": exc}) from exc


class InvokeForm(forms.Form):
    """A JSON input, or a plain message for flows whose state has ``messages``.

    Given the ``flow``, the input is checked against its state schema here
    (JSON converted by the annotations, as the REST API does); what only the
    run can tell (a reducer refusing the value) comes back through
    :meth:`add_input_error`.
    """

    message = forms.CharField(label=_("Message"), required=False, widget=forms.TextInput(attrs={"size": 60}))
    input = forms.CharField(
        label=_("Input (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": '{"messages": ["hello"]}'}),
    )

    def __init__(self, *args: Any, flow: FlowEngine | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flow = flow

    def add_input_error(self, error: InvalidInput) -> None:
        """The engine refused the input: the error goes on the field the user typed it in."""
        field = "message" if self.cleaned_data.get("message", "").strip() else "input"
        self.add_error(field, str(error))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        self._parse(data)
        self._check_against_the_schema(data)
        return data

    def _check_against_the_schema(self, data: dict[str, Any]) -> None:
        state = data.get("apply_state")
        if self.flow is None or not state:
            return
        try:
            data["apply_state"] = self.flow.input_from_json(state)
        except InvalidInput as error:
            self.add_input_error(error)

    def _parse(self, data: dict[str, Any]) -> None:
        message, raw = data.get("message", "").strip(), data.get("input", "").strip()
        if message and raw:
            raise ValidationError(_("Give a message or a JSON input, not both."))
        if message:
            data["apply_state"] = {"messages": [message]}
        elif raw:
            value = parse_json(raw, what=_("The input"))
            if not isinstance(value, dict):
                raise ValidationError(_("The input must be a JSON object of state fields."))
            data["apply_state"] = value
        else:
            data["apply_state"] = None  # continue with no updates


class ResumeForm(forms.Form):
    """The answer to a pending interrupt (JSON; plain text is taken as a string)."""

    answer = forms.CharField(label=_("Answer"), widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def clean_answer(self) -> Any:
        text = self.cleaned_data["answer"].strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text


class StartSessionForm(InvokeForm):
    """A new session of any registered flow."""

    # a declared field: the form's metaclass moves it to base_fields, it does not replace InvokeForm.flow
    flow = forms.ChoiceField(label=_("Flow"))  # type: ignore[assignment]
    session_id = forms.CharField(
        label=_("Session id"), required=False, max_length=255,
        help_text=_("Leave empty for a new random id; the id of an existing session continues that session."),
    )
    owner = forms.IntegerField(label=_("Owner (user id)"), required=False, min_value=1)

    field_order = ("flow", "session_id", "owner", "message", "input")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["flow"]).choices = [(name, name) for name in registry.flow_names()]

    def clean_session_id(self) -> str:
        session_id = self.cleaned_data["session_id"].strip() or f"admin-{uuid.uuid4().hex[:12]}"
        if not SESSION_ID_PATTERN.match(session_id):
            raise ValidationError(_("Use 1-255 characters from A-Z a-z 0-9 _ . : -"))
        return session_id
