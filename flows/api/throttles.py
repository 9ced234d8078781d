"""Rate limits on the routes that run flows, from ``FLOWS["THROTTLE_RATES"]``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from flows.conf import flows_settings


class InvokeRateThrottle(SimpleRateThrottle):
    """Limits runs per user (per client address when anonymous): ``THROTTLE_RATES["invoke"]``.

    Applies to the writes of views whose ``throttle_scope`` is ``"invoke"``
    (invoke, starting a background run); everything else passes. The
    counts live in Django's default cache, as DRF's throttles' do: use a shared
    cache (Redis, Memcached) so the limit holds across worker processes. An
    anonymous caller is counted by ``REMOTE_ADDR``; behind proxies, set DRF's
    ``NUM_PROXIES`` so the address comes from ``X-Forwarded-For``.
    """

    scope = "invoke"

    def __init__(self) -> None:  # the rate is read per request, not at import
        pass

    def allow_request(self, request: Any, view: Any) -> bool:
        if getattr(view, "throttle_scope", None) != self.scope or request.method in SAFE_METHODS:
            return True
        self.rate = (flows_settings.THROTTLE_RATES or {}).get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = request.user
        if user and user.is_authenticated:
            ident = user.pk
        elif api_settings.NUM_PROXIES is not None:  # DRF reads X-Forwarded-For through that many proxies
            ident = self.get_ident(request)
        else:  # a client-sent X-Forwarded-For must not buy a fresh allowance
            ident = request.META.get("REMOTE_ADDR")
        return self.cache_format % {"scope": self.scope, "ident": ident}
