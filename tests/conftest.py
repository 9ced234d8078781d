"""The whole suite: flows' own pool connections close before pytest-django drops the test databases."""

from __future__ import annotations

import pytest

from flows.testing import close_connections


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    yield
    close_connections()
