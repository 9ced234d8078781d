"""The REST API: flows, sessions, invoke (JSON or server-sent events), state, history, reset.

Thin over the engine and the registry; mounted by ``flows.urls``. See docs/api.md.
"""
