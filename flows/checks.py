"""System checks: every ``FLOWS`` misconfiguration is reported at startup, with an id.

* ``flows.E001`` ``FLOWS`` is malformed (not a dict, unknown key, wrong type or value)
* ``flows.E002`` a registered flow's dotted path does not import
* ``flows.E003`` a registered flow is not a ``FlowEngine`` (or a factory of one), or its graph is invalid
* ``flows.E004`` the checkpointer backend does not import or is no ``BaseCheckpointer``
* ``flows.E005`` an optional dependency of the chosen backend (or of the Redis event log) is not installed
* ``flows.E006`` the checkpointer rejects its options (unknown option, unknown database alias...)
* ``flows.E007`` the REST API is routed but an app it needs is not in ``INSTALLED_APPS``
* ``flows.W001`` the in-memory channel layer with ``DEBUG = False``: live events stay in one process
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from flows.engine import FlowEngine, GraphValidationError
from flows.engine.checkpointers import InMemoryCheckpointer
from flows.engine.checkpointers.checkpointer import ON_BUSY_CHOICES

from . import registry
from .conf import CHECKPOINTER_ALIASES, DEFAULTS, flows_settings

#: Modules each built-in backend needs beyond the standard library.
BACKEND_REQUIREMENTS = {"redis": ("redis",), "sql": ("sqlalchemy",)}
#: SQLAlchemy drivers by URL scheme, for ``CHECKPOINTER["OPTIONS"]["connection_string"]``.
SQL_DRIVERS = {
    "postgresql": "psycopg2",
    "postgresql+psycopg2": "psycopg2",
    "postgresql+asyncpg": "asyncpg",
    "postgresql+psycopg": "psycopg",
    "mysql": "MySQLdb",
    "mysql+pymysql": "pymysql",
    "mysql+aiomysql": "aiomysql",
    "mariadb+pymysql": "pymysql",
    "mariadb+aiomysql": "aiomysql",
    "sqlite+aiosqlite": "aiosqlite",
}

#: the distribution's extra that brings a module (the README's install lines)
EXTRAS = {"redis": "redis", "sqlalchemy": "sql", "psycopg2": "postgres", "asyncpg": "asyncpg", "pymysql": "mysql",
          "aiomysql": "aiomysql", "aiosqlite": "aiosqlite", "cryptography": "encryption"}
DISTRIBUTION = "django-persistent-flows"

_NUMBERS = ("BUSY_TIMEOUT", "LEASE_SECONDS", "MAX_CHECKPOINTS_PER_SESSION", "TTL_SECONDS",
            "EVENTS_TTL_SECONDS", "EVENTS_REDIS_SESSION_MAXLEN", "RUN_STALE_SECONDS")
_OPTIONAL_NUMBERS = ("MAX_CHECKPOINTS_PER_SESSION", "TTL_SECONDS")


def install_hint(modules: Iterable[str]) -> str:
    """``pip install`` of the extras that bring ``modules`` (and of the other modules by name)."""
    modules = list(modules)
    extras = sorted({EXTRAS[m] for m in modules if m in EXTRAS})
    others = [m for m in modules if m not in EXTRAS]
    return "pip install " + " ".join(([f"'{DISTRIBUTION}[{','.join(extras)}]'"] if extras else []) + others)


def _error(msg: str, id: int, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj="settings.FLOWS", id=f"flows.E{id:03d}")


@register("flows")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001: the shape of ``FLOWS``; the other checks run only when it is sound."""
    raw = getattr(settings, "FLOWS", None)
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [_error(f"FLOWS must be a dict, not {type(raw).__name__}.", 1)]
    errors: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        errors.append(_error(f"FLOWS has unknown keys: {', '.join(map(str, unknown))}.", 1,
                             hint=f"Known keys: {', '.join(DEFAULTS)}."))
    if raw.get("ON_BUSY", "wait") not in ON_BUSY_CHOICES:
        errors.append(_error(f"FLOWS['ON_BUSY'] must be one of {', '.join(map(repr, ON_BUSY_CHOICES))}, "
                             f"not {raw['ON_BUSY']!r}.", 1))
    errors.extend(_check_event_log(raw))
    for key in _NUMBERS:
        value = raw.get(key, DEFAULTS[key])
        if value is None and key in _OPTIONAL_NUMBERS:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or value <= 0:
            errors.append(_error(f"FLOWS[{key!r}] must be a positive number, not {value!r}.", 1))
    for key in ("PERMISSION_CLASSES", "THROTTLE_CLASSES", "AUTHENTICATION_CLASSES"):
        paths = raw.get(key, DEFAULTS[key])
        if key == "AUTHENTICATION_CLASSES" and paths is None:
            continue
        if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
            errors.append(_error(f"FLOWS[{key!r}] must be a list of dotted paths.", 1))
    for key in ("ANONYMOUS", "RECORD_RUNS", "SESSION_STATUS"):
        if not isinstance(raw.get(key, DEFAULTS[key]), bool):
            errors.append(_error(f"FLOWS[{key!r}] must be True or False.", 1))
    page_size = raw.get("PAGE_SIZE", DEFAULTS["PAGE_SIZE"])
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        errors.append(_error(f"FLOWS['PAGE_SIZE'] must be a whole number from 1 to 100, not {page_size!r}.", 1))
    errors.extend(_check_rates(raw.get("THROTTLE_RATES", DEFAULTS["THROTTLE_RATES"])))
    try:
        configs = registry.flow_configs()
        registry.checkpointer_settings()
        for config in configs.values():
            registry.checkpointer_settings(config)
    except ImproperlyConfigured as exc:
        errors.append(_error(str(exc), 1))
    return errors


def _check_event_log(raw: Mapping[str, Any]) -> list[CheckMessage]:
    """``EVENTS_REDIS_URL``: ``None`` (the database) or a Redis URL, with redis-py installed (E001, E005)."""
    url = raw.get("EVENTS_REDIS_URL")
    if url is None:
        return []
    if not isinstance(url, str) or url.split("://", 1)[0] not in ("redis", "rediss", "unix"):
        return [_error(f"FLOWS['EVENTS_REDIS_URL'] must be None or a redis://, rediss:// or unix:// URL, "
                       f"not {url!r}.", 1)]
    if importlib.util.find_spec("redis") is None:
        return [_error("FLOWS['EVENTS_REDIS_URL'] is set but the 'redis' package is not installed.", 5,
                       hint=install_hint(["redis"]))]
    return []


def _check_rates(rates: Any) -> list[CheckMessage]:
    """``THROTTLE_RATES``: scope -> ``"<n>/<second|minute|hour|day>"`` or ``None`` (no limit)."""
    if not isinstance(rates, Mapping):
        return [_error("FLOWS['THROTTLE_RATES'] must be a dict such as {'invoke': '60/minute'}.", 1)]
    errors: list[CheckMessage] = []
    for scope, rate in rates.items():
        number, _, period = rate.partition("/") if isinstance(rate, str) else ("", "", "")
        if rate is not None and not (number.isdigit() and period[:1] in ("s", "m", "h", "d")):
            errors.append(_error(f"FLOWS['THROTTLE_RATES'][{scope!r}] must be like '60/minute' or None, "
                                 f"not {rate!r}.", 1))
    return errors


def _settings_sound() -> bool:
    return not check_settings()


@register("flows")
def check_flows(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E002 / E003: each registered flow imports and is a valid ``FlowEngine``."""
    if not _settings_sound():
        return []
    errors: list[CheckMessage] = []
    for config in registry.flow_configs().values():
        label = f"flow {config.name!r} ({config.path})"
        try:
            target = import_string(config.path)
        except ImportError as exc:
            errors.append(_error(f"{label} does not import: {exc}", 2))
            continue
        try:
            engine = _engine_of(target)
            if not isinstance(engine, FlowEngine):
                errors.append(_error(f"{label} is not a FlowEngine or a factory returning one "
                                     f"(got {type(engine).__name__}).", 3))
                continue
            engine.build()
        except GraphValidationError as exc:
            errors.append(_error(f"{label} has an invalid graph: {exc}", 3))
    return errors


def _engine_of(target: Any) -> Any:
    """``target`` itself, or what the factory returns (given a throwaway store)."""
    if isinstance(target, FlowEngine) or not callable(target):
        return target
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
    return target(checkpointer=InMemoryCheckpointer()) if "checkpointer" in params else target()


@register("flows")
def check_checkpointers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E004 / E005 / E006: every configured checkpointer can be built."""
    if not _settings_sound():
        return []
    chosen: list[tuple[registry.FlowConfig | None, tuple[str, dict[str, Any]]]] = [
        (None, registry.checkpointer_settings())
    ]
    chosen += [(config, registry.checkpointer_settings(config))
               for config in registry.flow_configs().values() if config.checkpointer]
    errors: list[CheckMessage] = []
    for config, (backend, options) in chosen:
        where = f"the checkpointer of flow {config.name!r}" if config else "FLOWS['CHECKPOINTER']"
        missing = list(_missing_requirements(backend, options))
        if missing:
            errors.append(_error(
                f"{where} ({backend}) needs {', '.join(missing)}, which is not installed.", 5,
                hint=install_hint(missing),
            ))
            continue
        try:
            registry.checkpointer_class(backend)
        except ModuleNotFoundError as exc:
            target = CHECKPOINTER_ALIASES.get(backend, backend)
            if exc.name and not target.startswith(exc.name):
                errors.append(_error(f"{where} ({backend}) needs {exc.name}, which is not installed.", 5,
                                     hint=install_hint([exc.name])))
            else:
                errors.append(_error(f"{where}: unknown checkpointer {backend!r}: {exc}", 4))
            continue
        except (ImportError, TypeError) as exc:
            errors.append(_error(f"{where}: unknown checkpointer {backend!r}: {exc}", 4,
                                 hint=f"Use a dotted path or one of {', '.join(CHECKPOINTER_ALIASES)}."))
            continue
        errors.extend(_check_options(where, config, options))
    return errors


def _missing_requirements(backend: str, options: Mapping[str, Any]) -> Iterable[str]:
    needed = list(BACKEND_REQUIREMENTS.get(backend, ()))
    if backend == "sql":
        url = str(options.get("connection_string", ""))
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme in SQL_DRIVERS:
            needed.append(SQL_DRIVERS[scheme])
    if options.get("encryption_keys"):
        needed.append("cryptography")
    for module in needed:
        if importlib.util.find_spec(module) is None:
            yield module


def _check_options(where: str, config: registry.FlowConfig | None, options: Mapping[str, Any]) -> list[Error]:
    using = options.get("using")
    if using is not None and using not in settings.DATABASES:
        return [_error(f"{where}: database alias {using!r} is not in DATABASES.", 6)]
    try:
        registry.build_checkpointer(config.name if config else "default", config)
    except (TypeError, ValueError) as exc:
        return [_error(f"{where} rejects its options: {exc}", 6)]
    return []


@register("flows")
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W001: with the in-memory layer, watchers on other workers never see a run's events."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = (layers.get("default") or {}).get("BACKEND", "")
    if settings.DEBUG or not backend.endswith("InMemoryChannelLayer"):
        return []
    return [Warning(
        "The in-memory channel layer is used with DEBUG = False: live events of a session reach "
        "only the watchers connected to the worker process that runs it.",
        hint="Use channels_redis (set REDIS_URL in the demo project) when you run several workers.",
        obj="settings.CHANNEL_LAYERS",
        id="flows.W001",
    )]


#: What each app in ``INSTALLED_APPS`` gives the REST API.
API_APPS = {
    "rest_framework": "DRF's templates and static files",
    "drf_spectacular": "the docs page's template",
    "drf_spectacular_sidecar": "Swagger UI's files for the docs page (served locally, no CDN)",
}


@register("flows")
def check_api_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E007: ``flows.urls`` is routed (the REST API) and an app it needs is missing."""
    if not _settings_sound():
        return []
    try:
        reverse("flows-api:flow-list")
    except NoReverseMatch:
        return []  # the site does not serve the API
    errors: list[CheckMessage] = []
    for app, why in API_APPS.items():
        if not apps.is_installed(app):
            errors.append(_error(f"The flows REST API is routed but {app!r} is not in INSTALLED_APPS ({why}).", 7,
                                 hint=f"Add {app!r} to INSTALLED_APPS."))
    if any(path.endswith("TokenAuthentication") for path in _api_authentication()) and not apps.is_installed(
        "rest_framework.authtoken"
    ):
        errors.append(_error("The flows REST API authenticates with TokenAuthentication but "
                             "'rest_framework.authtoken' is not in INSTALLED_APPS.", 7,
                             hint="Add 'rest_framework.authtoken' and migrate, or drop TokenAuthentication."))
    return errors


def _api_authentication() -> list[str]:
    chosen = flows_settings.AUTHENTICATION_CLASSES
    if chosen is None:
        from rest_framework.settings import api_settings

        # api_settings holds the classes (imported from REST_FRAMEWORK's strings)
        return [cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
                for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    return [path if isinstance(path, str) else path.__qualname__ for path in chosen]
