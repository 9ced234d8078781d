"""Tagged JSON serialisation of state values: exact round trips, never pickle.

Plain JSON values pass through untouched. ``datetime``, ``date``, ``time``,
``UUID``, ``Decimal``, ``bytes``, ``tuple``, ``set``, dicts with non-string keys,
and registered pydantic models / dataclasses become small tagged objects
``{"__flows__": tag, "v": ...}``. Anything else fails closed with
:class:`SerializationError`, on save and on load alike.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from .errors import SerializationError
from .values import ReadOnlyDict, ReadOnlyList

TAG = "__flows__"
_TAG_KEY = f'"{TAG}"'.encode()
_JSON_SCALARS = (str, int, float, bool, type(None))
#: One compact encoder, built once (json.dumps with options builds one per call).
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_pydantic_model(cls: type) -> bool:
    return hasattr(cls, "model_dump") and hasattr(cls, "model_validate")


class JsonSerializer:
    """Turns state values into JSON bytes and back.

    ``types`` lists the pydantic models and dataclasses allowed in the state;
    they are stored by qualified name and rebuilt only if registered here.
    """

    def __init__(self, types: Iterable[type] = ()) -> None:
        self._types: dict[str, type[Any]] = {}
        for cls in types:
            if not (dataclasses.is_dataclass(cls) or _is_pydantic_model(cls)):
                raise SerializationError(
                    f"{_type_name(cls)} is neither a dataclass nor a pydantic model; "
                    "only those can be registered as state types"
                )
            self._types[_type_name(cls)] = cls
        self._registered = frozenset(self._types.values())
        #: what this serializer can load: cached decoded values are keyed by it
        self.signature = frozenset(self._types)
        self._encoders: dict[type, Callable[[Any], Any]] = {
            dt.datetime: lambda v: {TAG: "datetime", "v": v.isoformat()},
            dt.date: lambda v: {TAG: "date", "v": v.isoformat()},
            dt.time: lambda v: {TAG: "time", "v": v.isoformat()},
            uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
            Decimal: lambda v: {TAG: "decimal", "v": str(v)},
            bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
            tuple: lambda v: {TAG: "tuple", "v": [self.to_jsonable(i) for i in v]},
            frozenset: lambda v: {TAG: "frozenset", "v": [self.to_jsonable(i) for i in v]},
            set: lambda v: {TAG: "set", "v": [self.to_jsonable(i) for i in v]},
        }

    # -- values <-> JSON-compatible objects ---------------------------------

    def to_jsonable(self, value: Any) -> Any:
        cls = type(value)
        if cls in _JSON_SCALARS:
            return value
        if cls is list or cls is ReadOnlyList:
            return [self.to_jsonable(item) for item in value]
        if cls is dict or cls is ReadOnlyDict:
            return self._dict_to_jsonable(value)
        encoder = self._encoders.get(cls)
        if encoder is not None:
            return encoder(value)
        if cls in self._registered:
            return self._object_to_jsonable(value)
        raise SerializationError(
            f"cannot serialise a value of type {_type_name(cls)}: register it with "
            "FlowEngine(types=[...]) (pydantic models and dataclasses) or convert it to JSON data"
        )

    def _dict_to_jsonable(self, value: dict[Any, Any]) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: self.to_jsonable(v) for k, v in value.items()}
        return {TAG: "dict", "v": [[self.to_jsonable(k), self.to_jsonable(v)] for k, v in value.items()]}

    def _object_to_jsonable(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            fields = {f.name: self.to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        else:
            fields = self.to_jsonable(value.model_dump(mode="python"))
        return {TAG: "object", "t": _type_name(type(value)), "v": fields}

    def from_jsonable(self, value: Any) -> Any:
        """Inverse of :meth:`to_jsonable` for an already-parsed object tree."""
        cls = type(value)
        if cls is list:
            return [self.from_jsonable(item) for item in value]
        if cls is dict:
            if TAG in value:
                return self._decode_tagged(value)
            return {k: self.from_jsonable(v) for k, v in value.items()}
        return value

    def _decode_tagged(self, obj: dict[str, Any]) -> Any:
        tag = obj[TAG]
        raw: Any = obj.get("v")  # checked by what decodes it: a wrong one is a TypeError below
        try:
            if tag == "datetime":
                return dt.datetime.fromisoformat(raw)
            if tag == "date":
                return dt.date.fromisoformat(raw)
            if tag == "time":
                return dt.time.fromisoformat(raw)
            if tag == "uuid":
                return uuid.UUID(raw)
            if tag == "decimal":
                return Decimal(raw)
            if tag == "bytes":
                return base64.b64decode(raw)
            if tag == "tuple":
                return tuple(self.from_jsonable(i) for i in raw)
            if tag == "set":
                return {self.from_jsonable(i) for i in raw}
            if tag == "frozenset":
                return frozenset(self.from_jsonable(i) for i in raw)
            if tag == "dict":
                return {self.from_jsonable(k): self.from_jsonable(v) for k, v in raw}
            if tag == "object":
                return self._decode_object(obj["t"], raw)
        except (TypeError, ValueError, KeyError) as exc:
            raise SerializationError(f"corrupt {tag!r} value in stored state: {exc}") from exc
        raise SerializationError(f"unknown tag {tag!r} in stored state")

    def _decode_object(self, name: str, raw: dict[str, Any]) -> Any:
        cls = self._types.get(name)
        if cls is None:
            raise SerializationError(
                f"stored state holds a {name} but that type is not registered; "
                "pass it in FlowEngine(types=[...]) to load it"
            )
        fields = self.from_jsonable(raw)
        if dataclasses.is_dataclass(cls):
            return cls(**fields)
        return cls.model_validate(fields)

    # -- values <-> bytes ----------------------------------------------------

    def dumps(self, value: Any) -> bytes:
        try:
            return COMPACT_JSON.encode(self.to_jsonable(value)).encode("utf-8")
        except ValueError as exc:  # NaN / infinity
            raise SerializationError(f"cannot serialise value: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise SerializationError(f"stored state is not valid JSON: {exc}") from exc
        # plain JSON (no tagged value anywhere: the key cannot hide in a string) needs no walk
        return self.from_jsonable(parsed) if _TAG_KEY in data else parsed


DEFAULT_SERIALIZER = JsonSerializer()
