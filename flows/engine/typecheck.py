"""Checks a value against a state field's annotation, with pydantic's ``TypeAdapter``.

Input from callers (``invoke``, ``stream``, ``update_state``) is checked before
anything runs or is stored, so a wrong type is a clear error naming the field
instead of a node failing later on a session it has already broken.

Python values are checked in strict mode and kept as given (``5`` is no valid
``str``, ``"5"`` no valid ``int``; nothing is converted). JSON input (HTTP,
the command line) is converted by the annotation first (:meth:`TypeCheck.from_json`):
an ISO string for a ``datetime`` field, an object for a registered dataclass.
A type pydantic cannot describe is checked with ``isinstance``; one it cannot
even do that for is not checked.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError


class TypeCheck:
    """The check for one annotation (built once per field, on first use)."""

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._adapter = _adapter(annotation)

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this type, or ``None`` if it fits."""
        if self._adapter is None:
            return None
        try:
            self._adapter.validate_python(value, strict=True)
        except ValidationError as error:
            return _describe(error)
        return None

    def from_json(self, text: str) -> Any:
        """The value JSON ``text`` stands for; ``ValueError`` saying why when it does not fit."""
        if self._adapter is None:
            return json.loads(text)
        try:
            return self._adapter.validate_json(text, strict=True)
        except ValidationError as error:
            raise ValueError(_describe(error)) from None


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except PydanticUserError:
        pass  # types with a config of their own (models, dataclasses, TypedDicts) refuse one
    try:
        return TypeAdapter(annotation)
    except PydanticUserError:
        return None


def _describe(error: ValidationError) -> str:
    """Pydantic's first complaint, with where in the value it is (``at 2.content``)."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    problem = first["msg"]
    if where:
        problem += f" at {where}"
    got = first.get("input")
    return f"{problem} (got {type(got).__name__})"
