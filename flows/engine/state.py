"""The state schema: its fields, their reducers, and how updates merge."""

from __future__ import annotations

import inspect
import json
import operator
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .checkpointers import delta
from .checkpointers.types import EXTEND, SET, Change
from .errors import GraphValidationError, InvalidInput
from .keys import key_label, key_problem
from .primitives import RESERVED
from .reducers import appends
from .typecheck import TypeCheck

Reducer = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    reducer: Reducer | None
    appends: bool
    #: builds the value a reducer starts from (``list`` for ``Annotated[list, ...]``)
    empty: Callable[[], Any] | None = None
    #: the declared type, without ``Annotated``'s extras
    annotation: Any = Any

    @property
    def takes_its_type(self) -> bool:
        """Whether an update must itself be a value of the field's type.

        True without a reducer and for ``operator.add``; any other reducer
        decides what it accepts (a message reducer may take a plain string).
        """
        return self.reducer is None or self.reducer is operator.add


class StateSchema:
    """Reads a ``TypedDict`` (or plain ``dict``: any keys, no reducers) once, at build."""

    def __init__(self, schema: type) -> None:
        self.schema = schema
        self.open = schema is dict
        self.fields: dict[str, Field] = {} if self.open else _fields(schema)
        #: the fields that only grow: their items are handed out read-only (see values.py)
        self.appending = frozenset(name for name, spec in self.fields.items() if spec.appends)
        self._checks: dict[str, TypeCheck] = {}

    def field(self, name: str, origin: str) -> Field:
        spec = self.fields.get(name)
        if spec is not None:
            return spec
        if self.open:
            problem = key_problem(name)
            if problem is not None:  # what could not be stored and read back as it is
                label = key_label(name)
                raise InvalidInput(f"{origin} wrote the state key {label}: {problem}", fields={label: problem})
            return Field(name, None, False)
        raise InvalidInput(
            f"{origin} wrote unknown state field {name!r}; the schema "
            f"{self.schema.__name__} has {sorted(self.fields)}",
            fields={name: f"not a field of {self.schema.__name__}"},
        )

    def _check_of(self, spec: Field) -> TypeCheck:
        check = self._checks.get(spec.name)
        if check is None:
            check = self._checks[spec.name] = TypeCheck(spec.annotation)
        return check

    def check_input(self, updates: Mapping[str, Any], origin: str) -> None:
        """Validates a caller's updates against the annotations, before anything runs.

        Raises :class:`InvalidInput` naming every field that is unknown or holds
        a value of the wrong type. Reducer fields are checked by their reducer
        when merged (see :meth:`merge`), except ``operator.add`` fields, whose
        updates must be values of the field's type.
        """
        problems: dict[str, str] = {}
        for name, value in updates.items():
            spec = self.field(name, origin)
            if spec.takes_its_type:
                problem = self._check_of(spec).problem(value)
                if problem is not None:
                    problems[name] = problem
        if problems:
            detail = "; ".join(f"{name!r}: {problem}" for name, problem in problems.items())
            raise InvalidInput(f"invalid values in {origin}: {detail}", fields=problems)

    def from_json(self, data: Mapping[str, Any], origin: str) -> dict[str, Any]:
        """Converts JSON data to state values by the annotations (for HTTP and CLI input).

        ISO strings become datetimes, objects become registered dataclasses or
        models, lists become tuples where the type says so. Fields whose
        reducer takes something else than the field's type get the data as is.
        """
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, value in data.items():
            spec = self.field(name, origin)
            if not spec.takes_its_type:
                values[name] = value
                continue
            try:
                values[name] = self._check_of(spec).from_json(json.dumps(value))
            except ValueError as error:
                problems[name] = str(error)
        if problems:
            detail = "; ".join(f"{name!r}: {problem}" for name, problem in problems.items())
            raise InvalidInput(f"invalid values in {origin}: {detail}", fields=problems)
        return values

    def merge(
        self, state: dict[str, Any], updates: Mapping[str, Any], origin: str, track: bool, *, own: bool = False
    ) -> dict[str, Change]:
        """Applies ``updates`` to ``state`` in place through the reducers.

        Returns each updated field's write when ``track`` (a checkpointer is
        attached); computing writes is skipped otherwise. ``own``: the lists in
        ``state`` belong to it alone (just read from a checkpoint, handed to no
        node yet), so ``operator.add`` may append to them instead of building
        ``old + update``, a copy of the whole conversation: the same list of
        the same items, in O(len(update)).
        """
        if type(updates) is not dict and not isinstance(updates, Mapping):
            raise InvalidInput(f"{origin} must return a dict of state updates, not {type(updates).__name__}")
        changes: dict[str, Change] = {}
        for name, value in updates.items():
            spec = self.field(name, origin)
            old = state.get(name, delta.MISSING)
            if old is delta.MISSING:
                new = value if spec.reducer is None else _first_value(spec, value, origin)
                if track:
                    changes[name] = Change(SET, new)
            elif spec.reducer is None:
                new = value
                if track:
                    changes[name] = delta.diff(old, new)
            elif own and spec.reducer is operator.add and type(old) is list and type(value) is list and old:
                cut = len(old)
                old.extend(value)  # what old + value holds
                new = old
                if track:
                    changes[name] = Change(EXTEND, old[cut:])  # what delta.appended gives for old + value
            else:
                try:
                    new = spec.reducer(old, value)
                except (TypeError, ValueError, AttributeError, KeyError) as error:
                    raise _rejected(origin, name, error) from error
                if track:
                    changes[name] = delta.appended(old, new) if spec.appends else delta.diff(old, new)
            state[name] = new
        return changes


def _first_value(spec: Field, value: Any, origin: str) -> Any:
    """A reducer field's first value: the reducer applied to its type's empty value.

    So a reducer that normalises its input (text to a message, say) sees the
    first input too. Without a usable empty value the input is taken as is.
    """
    if spec.empty is None:
        return value
    try:
        return spec.reducer(spec.empty(), value)  # type: ignore[misc]
    except (TypeError, ValueError, AttributeError, KeyError) as error:
        raise _rejected(origin, spec.name, error) from error


def _rejected(origin: str, name: str, error: Exception) -> InvalidInput:
    """A reducer refused an update: the caller's (or the node's) mistake, named."""
    problem = f"the reducer rejected {type(error).__name__}: {error}"
    return InvalidInput(f"{origin}: state field {name!r}: {problem}", fields={name: problem})


def _fields(schema: type) -> dict[str, Field]:
    try:
        hints = typing.get_type_hints(schema, include_extras=True)
    except (NameError, TypeError) as exc:
        raise GraphValidationError(f"cannot read the state schema {schema!r}: {exc}") from exc
    if not hints:
        raise GraphValidationError(f"state schema {schema!r} declares no fields; use a TypedDict")
    fields = {}
    for name, hint in hints.items():
        if name in RESERVED:
            raise GraphValidationError(f"state field {name!r} uses a reserved name")
        problem = key_problem(name)
        if problem is not None:
            raise GraphValidationError(f"state field {key_label(name)}: {problem}")
        hint = _unwrapped(hint)
        reducer = _reducer(name, hint)
        empty = _empty_factory(hint) if reducer is not None else None
        fields[name] = Field(name, reducer, reducer is not None and appends(reducer), empty, _checked_type(hint))
    return fields


#: TypedDict qualifiers that say whether a key may be missing, not what its value is.
_QUALIFIERS = {typing.Required, typing.NotRequired, *([typing.ReadOnly] if hasattr(typing, "ReadOnly") else [])}


def _unwrapped(hint: Any) -> Any:
    """``NotRequired[Annotated[list, r]]`` -> ``Annotated[list, r]``."""
    while typing.get_origin(hint) in _QUALIFIERS:
        hint = typing.get_args(hint)[0]
    return hint


def _checked_type(hint: Any) -> Any:
    """What values are checked against: the type with its constraints, without the reducer.

    ``Annotated[int, Gt(0)]`` stays as it is (pydantic reads the constraint);
    ``Annotated[list, operator.add]`` is ``list``.
    """
    if typing.get_origin(hint) is not typing.Annotated:
        return hint
    base, *metadata = typing.get_args(hint)
    constraints = [meta for meta in metadata if not callable(meta)]
    return typing.Annotated[(base, *constraints)] if constraints else base


def _reducer(name: str, hint: Any) -> Reducer | None:
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    reducers: list[Reducer] = [meta for meta in hint.__metadata__ if callable(meta)]
    if not reducers:
        return None
    reducer = reducers[-1]
    try:
        signature = inspect.signature(reducer)
    except (TypeError, ValueError):
        return reducer  # builtins such as operator.add have no readable signature
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise GraphValidationError(
            f"the reducer of state field {name!r} must take two arguments (old, new): {exc}"
        ) from exc
    return reducer


def _empty_factory(hint: Any) -> Callable[[], Any] | None:
    """``list`` for ``Annotated[list[str], r]``; ``None`` when the type has no empty value."""
    base = typing.get_args(hint)[0]
    origin = typing.get_origin(base) or base
    if origin in (list, dict, set, tuple, str):
        empty: Callable[[], Any] = origin
        return empty
    return None
