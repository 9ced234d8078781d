"""What a top-level state key may be: what every backend stores and gives back exactly.

A state's top-level keys are stored as text (the ``field`` column of the SQL
and ORM stores, ``VARCHAR(255)``; part of a Redis key), not inside the
serialised value, so they must be text every backend keeps apart:

* a ``str`` (exactly: an ``int`` key would come back as ``'7'``, next to the
  ``7`` of a later update) of 1 to 255 characters;
* without NUL (PostgreSQL's text types cannot hold it) and valid Unicode (no
  lone surrogates: UTF-8 cannot encode them);
* not ending with a space: MySQL/MariaDB collations compare ``'a '`` equal to
  ``'a'``, so the two would overwrite each other's writes.

Other control characters (tab, newline, ...) round-trip on every backend and
are accepted. Keys nested inside values are the serializer's: any JSON-able or
tagged key round-trips there (:mod:`.serde`).
"""

from __future__ import annotations

from typing import Any

MAX_KEY_LENGTH = 255


def key_problem(key: Any) -> str | None:
    """What is wrong with ``key`` as a top-level state key, or ``None``."""
    if type(key) is not str:
        return f"state keys must be strings, not {type(key).__name__} (it would be stored as text)"
    if not key:
        return "a state key cannot be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"a state key has at most {MAX_KEY_LENGTH} characters, not {len(key)}"
    if "\0" in key:
        return "a state key cannot contain NUL characters"
    if key[-1] == " ":
        return "a state key cannot end with a space (MySQL/MariaDB would not tell it from the key without it)"
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return "a state key must be valid Unicode text (it holds a lone surrogate)"
    return None


def key_label(key: Any) -> str:
    """``key`` as the name of the offending field in an error: short, printable text."""
    text = repr(key)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"
