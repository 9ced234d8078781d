"""``settings.FLOWS``: one dict, read on access, with documented defaults.

Modelled on DRF's ``api_settings``: nothing is read at import time, values are
cached on first access and the cache is dropped when a test changes ``FLOWS``
(``override_settings``), so ``flows_settings.X`` always reflects the settings.

Keys (all optional)::

    FLOWS = {
        # name -> dotted path of a built FlowEngine, or of a factory returning
        # one (called with checkpointer=... when it takes that argument).
        # A value may also be {"PATH": "...", "CHECKPOINTER": {...}} to give one
        # flow its own checkpointer.
        "REGISTRY": {"support": "project.flows.support.build_support_flow"},
        # The store every flow uses unless it names its own. BACKEND is a dotted
        # path or an alias: "django" (default), "redis", "sql", "memory".
        "CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {}},
        "ON_BUSY": "wait",                   # or "reject": a busy session fails at once
        "BUSY_TIMEOUT": 30.0,                # seconds "wait" queues before SessionBusy
        "LEASE_SECONDS": 30.0,               # how long a crashed worker blocks a session
        "MAX_CHECKPOINTS_PER_SESSION": None, # history kept per session (None: all)
        "TTL_SECONDS": None,                 # idle sessions expire after this long
        # The REST API (flows.api); see docs/api.md.
        "ANONYMOUS": False,                  # True: callers need not sign in (sessions are then ownerless)
        "AUTHENTICATION_CLASSES": None,      # None: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
        "PERMISSION_CLASSES": ["flows.api.permissions.IsAuthenticatedOrAnonymousAllowed"],
        "THROTTLE_CLASSES": ["flows.api.throttles.InvokeRateThrottle"],
        "THROTTLE_RATES": {"invoke": "60/minute"},  # per user (or per address when anonymous)
        "PAGE_SIZE": 20,                     # sessions and checkpoints per page (?limit= up to 100)
        # Runs (flows.runs); see docs/runs.md.
        "RECORD_RUNS": True,                 # every call of a registered flow is a Run with its events
        "SESSION_STATUS": True,              # FlowSession rows follow their runs' status (False: no row writes)
        "RUNS_TASK_BACKEND": "default",      # the TASKS backend background runs are enqueued on
        "RUNS_QUEUE": "default",             # ... and its queue
        "RUNS_ENQUEUE": None,                # or a dotted path of enqueue(run_id, delay): a queue of the site's own
        "RUN_STALE_SECONDS": 30.0,           # a running run silent this long is resumed by another worker
        "EVENTS_TTL_SECONDS": 604800,        # run events are kept this long (flows_prune deletes older ones)
        "EVENTS_REDIS_URL": None,            # a Redis URL: runs' events in Redis streams, not RunEvent rows
        "EVENTS_REDIS_PREFIX": "flows:events:",
        "EVENTS_REDIS_SESSION_MAXLEN": 10000, # a session's watcher stream keeps about this many events
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "FLOWS"

#: Short names for the built-in checkpointers, usable as ``CHECKPOINTER["BACKEND"]``.
CHECKPOINTER_ALIASES: dict[str, str] = {
    "django": "flows.checkpointer.DjangoCheckpointer",
    "memory": "flows.engine.checkpointers.InMemoryCheckpointer",
    "redis": "flows.engine.checkpointers.RedisCheckpointer",
    "sql": "flows.engine.checkpointers.SQLCheckpointer",
}

DEFAULTS: dict[str, Any] = {
    "REGISTRY": {},
    "CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {}},
    "ON_BUSY": "wait",
    "BUSY_TIMEOUT": 30.0,
    "LEASE_SECONDS": 30.0,
    "MAX_CHECKPOINTS_PER_SESSION": None,
    "TTL_SECONDS": None,
    "ANONYMOUS": False,
    "AUTHENTICATION_CLASSES": None,
    "PERMISSION_CLASSES": ["flows.api.permissions.IsAuthenticatedOrAnonymousAllowed"],
    "THROTTLE_CLASSES": ["flows.api.throttles.InvokeRateThrottle"],
    "THROTTLE_RATES": {"invoke": "60/minute"},
    "PAGE_SIZE": 20,
    "RECORD_RUNS": True,
    "SESSION_STATUS": True,
    "RUNS_TASK_BACKEND": "default",
    "RUNS_QUEUE": "default",
    "RUNS_ENQUEUE": None,
    "RUN_STALE_SECONDS": 30.0,
    "EVENTS_TTL_SECONDS": 7 * 24 * 3600,
    "EVENTS_REDIS_URL": None,
    "EVENTS_REDIS_PREFIX": "flows:events:",
    "EVENTS_REDIS_SESSION_MAXLEN": 10000,
}


class FlowsSettings:
    """Attribute access to ``settings.FLOWS`` merged over :data:`DEFAULTS`."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self.defaults = dict(DEFAULTS if defaults is None else defaults)
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> Mapping[str, Any]:
        """The raw ``settings.FLOWS`` (``{}`` when unset); malformed is an error."""
        value = getattr(settings, SETTING_NAME, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(f"settings.{SETTING_NAME} must be a dict, not {type(value).__name__}")
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"invalid {SETTING_NAME} setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()


flows_settings = FlowsSettings()


@receiver(setting_changed)
def _reload_flows_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        flows_settings.reload()
