"""The socket tests: the API tests' flows, users and clients."""

from tests.api.conftest import alice, api, bob, bobs, flows_registry, server, staff  # noqa: F401
