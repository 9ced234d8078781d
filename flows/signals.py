"""Signals sent as flows run (receivers may be sync or ``async def``)."""

from __future__ import annotations
