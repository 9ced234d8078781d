"""State values handed out from a checkpoint: copies, or shared read-only items.

A node or caller must never be able to change what a checkpoint (or the read
cache) holds. :func:`fresh` copies; :func:`read_only` turns decoded JSON data
into :class:`ReadOnlyDict` / :class:`ReadOnlyList`, which can be shared with
every reader at no cost because changing them in place raises
:class:`~flows.engine.errors.ReadOnlyValue`. They are real ``dict`` and
``list`` subclasses: reading, ``isinstance``, JSON encoding and ``==`` work as on
plain ones, and ``dict(item)`` / ``item.copy()`` / ``copy.deepcopy(item)`` give
an ordinary, changeable copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from itertools import chain
from typing import Any, NoReturn

from .errors import ReadOnlyValue

IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})
#: values that cannot change in place, besides the JSON scalars
_ALSO_IMMUTABLE = frozenset({dt.datetime, dt.date, dt.time, uuid.UUID, Decimal})

_REFUSAL = (
    "this {kind} was read from a checkpoint and is shared with other readers: items of an "
    "appending field are read-only, since a change made in place would never be saved. "
    "Copy it first ({copy}) and return the new value"
)


def _refuse_dict(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise ReadOnlyValue(_REFUSAL.format(kind="dict", copy="dict(item)"))


def _refuse_list(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise ReadOnlyValue(_REFUSAL.format(kind="list", copy="list(item)"))


class ReadOnlyDict(dict[Any, Any]):
    """A ``dict`` whose in-place changes raise :class:`ReadOnlyValue`; copies are plain dicts."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse_dict
    clear = pop = popitem = setdefault = update = _refuse_dict

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        copied: dict[Any, Any] = fresh(self)
        return copied

    def __reduce__(self) -> tuple[type[dict[Any, Any]], tuple[dict[Any, Any]]]:
        return (dict, (dict(self),))


class ReadOnlyList(list[Any]):
    """A ``list`` whose in-place changes raise :class:`ReadOnlyValue`; copies are plain lists."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse_list
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse_list

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copied: list[Any] = fresh(self)
        return copied

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return (list, (list(self),))


READ_ONLY = IMMUTABLE | _ALSO_IMMUTABLE | {ReadOnlyDict, ReadOnlyList}


class NotReadOnly(Exception):
    """The value holds something that cannot be made read-only (a set, a registered object)."""


def read_only(value: Any) -> Any:
    """``value`` with every dict and list in it made read-only (new objects; ``value`` is left as is).

    Raises :class:`NotReadOnly` for a value holding a mutable object of another type.
    """
    kind = type(value)
    if kind in READ_ONLY:
        return value
    if kind is dict:
        for item in value.values():
            if type(item) not in READ_ONLY:
                return ReadOnlyDict({key: read_only(item) for key, item in value.items()})
        return ReadOnlyDict(value)
    if kind is list:
        return ReadOnlyList([read_only(item) for item in value])
    if kind is tuple or kind is frozenset:
        return kind(read_only(item) for item in value)
    raise NotReadOnly(kind.__name__)


def frozen(items: Iterable[Any]) -> bool:
    """Whether every item is immutable, so a shallow copy of their list is enough."""
    return IMMUTABLE.issuperset(map(type, items))


def flat_dicts(items: list[Any]) -> bool:
    """Whether every item is a dict of immutable values (chat messages, typically):
    :class:`ReadOnlyDict` of each is then :func:`read_only` of it, without a call per item."""
    return (
        bool(items)
        and {*map(type, items)} == {dict}
        and IMMUTABLE.issuperset(map(type, chain.from_iterable(map(dict.values, items))))
    )


def fresh(value: Any) -> Any:
    """A plain copy of ``value`` sharing nothing mutable with it."""
    kind = type(value)
    if kind in IMMUTABLE:
        return value
    if kind is list or kind is ReadOnlyList:
        return [fresh(item) for item in value]
    if kind is dict or kind is ReadOnlyDict:
        return {key: fresh(item) for key, item in value.items()}
    return copy.deepcopy(value)
