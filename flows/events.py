"""The JSON form of states and run events, for every face that sends them.

The REST API, its server-sent events and the WebSocket all send states and the
engine's event dicts as they are; this encoder covers every value a state can
hold (what the engine's serializer stores): datetimes, dates and times as ISO
strings, ``UUID`` and ``Decimal`` as strings, ``bytes`` as base64, tuples and
sets as lists, registered dataclasses and pydantic models as their fields.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


class StateJSONEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, bytes):
            return base64.b64encode(o).decode("ascii")
        if isinstance(o, (set, frozenset)):
            return sorted(o, key=repr)
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        model_dump = getattr(o, "model_dump", None)  # pydantic
        if callable(model_dump):
            return model_dump(mode="json")
        return super().default(o)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON text (compact unless ``indent``) that always encodes as UTF-8.

    Text stays as it is, except a lone surrogate (which UTF-8 cannot hold):
    then the whole text is escaped to ASCII.
    """
    separators = (",", ":") if indent is None else None
    text = json.dumps(value, cls=StateJSONEncoder, ensure_ascii=False, indent=indent, separators=separators)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, cls=StateJSONEncoder, ensure_ascii=True, indent=indent, separators=separators)
    return text
