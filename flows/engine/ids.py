"""Unique ids for checkpoints and tasks, cheap enough for every step.

A random per-process prefix (renewed in a forked child) plus a counter: ids
never collide across processes or hosts in practice, and making one costs no
system call. They are identifiers, not secrets: access control never relies
on an id being hard to guess.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from .errors import InvalidSessionId

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,255}\Z")  # \Z: no trailing newline

_prefix = os.urandom(8).hex()
_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def _renew() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew)


def new_id() -> str:
    """32 hex characters, unique per call."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def validate_session_id(session_id: Any) -> str:
    """``session_id`` if it is a valid session id, else :class:`InvalidSessionId`."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.match(session_id):
        raise InvalidSessionId(
            f"invalid session id {session_id!r}: use 1-255 characters from A-Z a-z 0-9 _ . : -"
        )
    return session_id
