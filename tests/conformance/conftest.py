"""Fixtures that run every conformance test once per checkpointer backend."""

from __future__ import annotations

import pytest

from tests.backends import DURABLE, BackendSpec, backend_params, backend_specs


@pytest.fixture(params=backend_params())
def backend(request, tmp_path) -> BackendSpec:
    """A fresh, isolated backend description (its storage is new for each test)."""
    return backend_specs(str(tmp_path))[request.param]()


@pytest.fixture(params=backend_params(durable_only=True))
def durable_backend(request, tmp_path) -> BackendSpec:
    """A fresh durable backend: two checkpointers on it share its sessions, as two processes would."""
    return backend_specs(str(tmp_path))[request.param]()


@pytest.fixture
def durable(backend: BackendSpec) -> bool:
    return backend.name in DURABLE or backend.name.startswith("django")


@pytest.fixture
async def checkpointer(backend: BackendSpec):
    """A checkpointer on the backend; closed after the test when it has resources."""
    instance = backend.create()
    yield instance
    close = getattr(instance, "aclose", None)
    if close is not None:
        await close()
