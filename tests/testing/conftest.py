import pytest


@pytest.fixture(autouse=True)
def instant_tokens(monkeypatch):
    """The demo's replies stream without pauses here (FLOWS_DEMO_TOKEN_DELAY)."""
    monkeypatch.setenv("FLOWS_DEMO_TOKEN_DELAY", "0")
