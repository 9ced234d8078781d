"""System checks (``flows.E001``...)."""

from __future__ import annotations
