"""The flows a site registered in ``settings.FLOWS["REGISTRY"]``, resolved on first use.

Each name maps to the dotted path of a built :class:`~flows.engine.FlowEngine`
or of a factory returning one. A factory that takes a ``checkpointer``
argument receives the flow's configured checkpointer; an engine that has none
gets it attached. Resolved engines are cached per process and the cache is
dropped when ``FLOWS`` changes (``override_settings`` in tests).
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from flows.engine import FlowEngine
from flows.engine.checkpointers import BaseCheckpointer

from .conf import CHECKPOINTER_ALIASES, SETTING_NAME, flows_settings

#: Flow names appear in URLs, Redis keys and table prefixes.
FLOW_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,100}\Z")


class FlowNotFound(LookupError):
    """No flow is registered under that name."""

    code = "flow_not_found"


@dataclass(frozen=True)
class FlowConfig:
    """One ``REGISTRY`` entry, normalised."""

    name: str
    path: str
    checkpointer: Mapping[str, Any] | None = field(default=None)


def flow_configs() -> dict[str, FlowConfig]:
    """Every registered flow's configuration, by name (raises on a malformed entry)."""
    registry = flows_settings.REGISTRY
    if not isinstance(registry, Mapping):
        raise ImproperlyConfigured(f"{SETTING_NAME}['REGISTRY'] must be a dict of name -> dotted path")
    configs = {}
    for name, value in registry.items():
        if not isinstance(name, str) or not FLOW_NAME_PATTERN.match(name):
            raise ImproperlyConfigured(
                f"{SETTING_NAME}['REGISTRY']: flow name {name!r} must be 1-100 characters from A-Z a-z 0-9 _ -"
            )
        if isinstance(value, str):
            configs[name] = FlowConfig(name, value)
        elif isinstance(value, Mapping) and isinstance(value.get("PATH"), str):
            configs[name] = FlowConfig(name, value["PATH"], value.get("CHECKPOINTER"))
        else:
            raise ImproperlyConfigured(
                f"{SETTING_NAME}['REGISTRY'][{name!r}] must be a dotted path or a dict with a 'PATH'"
            )
    return configs


def flow_names() -> list[str]:
    return sorted(flow_configs())


def flow_config(name: str) -> FlowConfig:
    try:
        return flow_configs()[name]
    except KeyError:
        known = ", ".join(flow_names()) or "none"
        raise FlowNotFound(f"no flow named {name!r} is registered (known: {known})") from None


# ---------------------------------------------------------------------- checkpointers


def checkpointer_class(backend: str) -> type[BaseCheckpointer]:
    """The class for a ``CHECKPOINTER["BACKEND"]`` alias or dotted path.

    Raises ``ImportError`` when it cannot be imported (a missing optional
    dependency surfaces here) and ``TypeError`` when it is no checkpointer.
    """
    cls = import_string(CHECKPOINTER_ALIASES.get(backend, backend))
    if not (isinstance(cls, type) and issubclass(cls, BaseCheckpointer)):
        raise TypeError(f"{backend!r} is not a BaseCheckpointer subclass")
    return cls


def checkpointer_settings(config: FlowConfig | None = None) -> tuple[str, dict[str, Any]]:
    """The backend and options a flow's checkpointer is built from."""
    chosen = (config.checkpointer if config else None) or flows_settings.CHECKPOINTER
    if isinstance(chosen, str):
        chosen = {"BACKEND": chosen}
    if not isinstance(chosen, Mapping) or not isinstance(chosen.get("BACKEND", "django"), str):
        raise ImproperlyConfigured(f"{SETTING_NAME}['CHECKPOINTER'] must be a dict with a 'BACKEND' string")
    options = chosen.get("OPTIONS")
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(f"{SETTING_NAME}['CHECKPOINTER']['OPTIONS'] must be a dict")
    return chosen.get("BACKEND", "django"), dict(options)


def build_checkpointer(flow_name: str, config: FlowConfig | None = None) -> BaseCheckpointer:
    """A new checkpointer for ``flow_name`` from the settings.

    The shared options (lease, busy timeout, retention) come from the top-level
    ``FLOWS`` keys; ``OPTIONS`` override them. Each flow gets its own namespace:
    ``flow_name`` for stores that take it (Django), the flow's name appended to
    the Redis ``prefix``, or to the SQL ``table_prefix``.
    """
    backend, options = checkpointer_settings(config)
    cls = checkpointer_class(backend)
    params = inspect.signature(cls).parameters
    shared = {
        "lease_seconds": flows_settings.LEASE_SECONDS,
        "busy_timeout": flows_settings.BUSY_TIMEOUT,
        "max_checkpoints_per_session": flows_settings.MAX_CHECKPOINTS_PER_SESSION,
    }
    ttl_name = "ttl" if "ttl" in params and "ttl_seconds" not in params else "ttl_seconds"
    shared[ttl_name] = flows_settings.TTL_SECONDS
    kwargs = {key: value for key, value in shared.items() if value is not None}
    kwargs.update(options)
    if "flow_name" in params:
        kwargs.setdefault("flow_name", flow_name)
    elif "prefix" in params:
        kwargs["prefix"] = f"{options.get('prefix', 'flows:')}{flow_name}:"
    elif "table_prefix" in params:
        kwargs["table_prefix"] = f"{options.get('table_prefix', 'flows_')}{flow_name}_"
    return cls(**kwargs)


# ---------------------------------------------------------------------- engines


def load_engine(config: FlowConfig) -> FlowEngine:
    """Imports and builds one flow (uncached: :func:`get_flow` caches)."""
    target = import_string(config.path)
    if isinstance(target, FlowEngine):
        engine = target
    elif callable(target):
        engine = _call_factory(target, config)
        if not isinstance(engine, FlowEngine):
            raise TypeError(
                f"{config.path} returned {type(engine).__name__}, not a FlowEngine"
            )
    else:
        raise TypeError(f"{config.path} is a {type(target).__name__}, not a FlowEngine or a factory")
    if engine.checkpointer is None or engine in _attached:
        # (Re)attach the configured store; remembered so a settings change
        # replaces the store we attached but never one the site chose itself.
        engine.checkpointer = build_checkpointer(config.name, config)
        _attached.add(engine)
    from .runs.hooks import RunHooks
    from .signals import SignalHooks

    if not any(isinstance(hooks, SignalHooks) for hooks in engine.hooks):
        engine.add_hooks(SignalHooks(config.name))
    if flows_settings.RECORD_RUNS and not any(isinstance(hooks, RunHooks) for hooks in engine.hooks):
        engine.add_hooks(RunHooks(config.name))
    return engine.build()


def _call_factory(factory: Callable[..., Any], config: FlowConfig) -> Any:
    """Calls a factory with the arguments it accepts: ``checkpointer``."""
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    if "checkpointer" in params:
        kwargs["checkpointer"] = build_checkpointer(config.name, config)
    return factory(**kwargs)


_engines: dict[str, FlowEngine] = {}
_attached: weakref.WeakSet[FlowEngine] = weakref.WeakSet()
_lock = threading.Lock()


def get_flow(name: str) -> FlowEngine:
    """The registered flow ``name``, imported and built once per process.

    Raises :class:`FlowNotFound` for an unknown name.
    """
    engine = _engines.get(name)
    if engine is not None:
        return engine
    config = flow_config(name)
    with _lock:
        engine = _engines.get(name)
        if engine is None:
            engine = _engines[name] = load_engine(config)
    return engine


#: a reStructuredText literal in a docstring (``name``)
_LITERAL = re.compile(r"``([^`]+)``")


def flow_description(name: str) -> str:
    """The first paragraph of the flow's docstring: its factory's, else its module's."""
    config = flow_config(name)
    target = import_string(config.path)
    doc = target.__doc__ if inspect.isfunction(target) else None
    if not doc:
        doc = importlib.import_module(config.path.rpartition(".")[0]).__doc__
    paragraph = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return _LITERAL.sub(r"\1", " ".join(paragraph.split()))  # shown as text: ``AppState`` reads AppState


def get_checkpointer(name: str) -> BaseCheckpointer:
    """The checkpointer of the registered flow ``name``."""
    checkpointer = get_flow(name).checkpointer
    assert checkpointer is not None  # load_engine always attaches one
    return checkpointer


def clear_cache() -> None:
    with _lock:
        _engines.clear()


@receiver(setting_changed)
def _clear_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        clear_cache()
