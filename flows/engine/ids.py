"""Unique ids for checkpoints and tasks, cheap enough for every step.

A random per-process prefix (renewed in a forked child) plus a counter: ids
never collide across processes or hosts in practice, and making one costs no
system call. They are identifiers, not secrets: access control never relies
on an id being hard to guess.
"""

from __future__ import annotations

import itertools
import os

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
