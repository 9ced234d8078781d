"""Checkpoint and task ids."""

from __future__ import annotations

import os

import pytest

from flows.engine.ids import new_id


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forking is the point
def test_ids_are_unique_and_renewed_in_a_forked_child():
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != new_id()[:16]
