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


def _compact_json() -> Callable[[Any], str]:
    """``COMPACT_JSON.encode``, the same text and errors, minus the work it redoes per call.

    ``JSONEncoder.encode`` builds a new C encoder on every call, with a dict
    of the containers it is in to detect circular references: a microsecond
    of the 2-4 a step's checkpoint encoding takes, and most of a small
    value's. This is that C encoder made once, with the same options and no
    circular check: what it encodes is always a tree just built by
    :meth:`JsonSerializer.to_jsonable` (which never returns a circular one) or
    the engine's own bookkeeping.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (not CPython): the pure-Python encoder
        return COMPACT_JSON.encode
    chunks = make(None, COMPACT_JSON.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    join = "".join

    def encode(value: Any) -> str:
        if type(value) is str:  # as JSONEncoder.encode: the C encoder wants a container or scalar
            return json.encoder.encode_basestring(value)
        return join(chunks(value, 0))

    return encode


#: ``COMPACT_JSON.encode(value)``, faster (see :func:`_compact_json`).
compact_json = _compact_json()

#: what ``JSONDecoder.decode`` runs once its regular expressions are done (typeshed does not list it)
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def may_hold_tags(data: bytes) -> bool:
    """Whether JSON ``data`` may hold a tagged value: plain JSON needs no
    :meth:`JsonSerializer.from_jsonable` walk (the key cannot hide in a string).

    Looking for one byte first is a ``memchr``: text without an underscore is
    ruled out some thirty times faster than by searching for the key.
    """
    return b"_" in data and _TAG_KEY in data


def loads_json(data: bytes) -> Any:
    """``json.loads(data)`` for the UTF-8 JSON flows writes, without its per-call overhead.

    ``json.loads`` of bytes first guesses their encoding and strips whitespace
    around the value with regular expressions: for a checkpoint's small
    values, a third of the time. Anything this does not read whole as one
    value (whitespace, a byte order mark, other encodings, invalid JSON) goes
    to ``json.loads`` itself, which returns or raises what it always did.
    """
    try:
        text = data.decode("utf-8", "surrogatepass")
        value, end = _scan_once(text, 0)
    except (UnicodeDecodeError, StopIteration):
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return value


#: the same scanner, making each JSON object a :class:`ReadOnlyDict` as it parses it
_scan_read_only: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    object_hook=ReadOnlyDict
).scan_once


def flat_array(data: bytes) -> bool:
    """Whether JSON ``data`` is an array holding no array and no tagged value,
    which :func:`loads_items` reads (a ``[`` inside a string counts too: only a
    ``memchr`` is spent to find out)."""
    return data[:1] == b"[" and data.find(b"[", 1) < 0 and not may_hold_tags(data)


def loads_items(data: bytes) -> list[Any]:
    """The items of a :func:`flat_array`, read-only as :func:`~flows.engine.values.read_only`
    would make them, in one parse.

    The parser makes each object a :class:`ReadOnlyDict` itself, so a long
    conversation's messages are neither copied nor type-checked one by one
    after parsing (and, holding no array, nothing in them can change in place).
    """
    try:
        text = data.decode("utf-8", "surrogatepass")
        value, end = _scan_read_only(text, 0)
        if end == len(text):
            items: list[Any] = value
            return items
    except (ValueError, StopIteration):  # not UTF-8 or not JSON: json.loads says which
        pass
    try:  # not JSON as flows writes it: json.loads reads or refuses it
        items = json.loads(data, object_hook=ReadOnlyDict)
    except ValueError as exc:
        raise SerializationError(f"stored state is not valid JSON: {exc}") from exc
    return items


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
            return compact_json(self.to_jsonable(value)).encode("utf-8")
        except ValueError as exc:  # NaN / infinity
            raise SerializationError(f"cannot serialise value: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        try:
            parsed = loads_json(data)
        except ValueError as exc:
            raise SerializationError(f"stored state is not valid JSON: {exc}") from exc
        return self.from_jsonable(parsed) if may_hold_tags(data) else parsed


DEFAULT_SERIALIZER = JsonSerializer()
