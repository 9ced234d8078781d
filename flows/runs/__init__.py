"""Runs as records: every call of a flow is a ``Run`` with its events, and background runs
are executed by a worker through Django's Tasks API, stopped on request, and resumed
by another worker when theirs died. See docs/runs.md.
"""
