"""Rate limits on the routes that run flows, from ``FLOWS["THROTTLE_RATES"]``."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from flows.conf import flows_settings


class InvokeRateThrottle(SimpleRateThrottle):
    """Limits runs per user (per client address when anonymous): ``THROTTLE_RATES["invoke"]``.

    Applies to views whose ``throttle_scope`` is ``"invoke"``; others pass. The
    counts live in Django's default cache, as DRF's throttles' do: use a shared
    cache (Redis, Memcached) so the limit holds across worker processes.
    """

    scope = "invoke"

    def __init__(self) -> None:  # the rate is read per request, not at import
        pass

    def allow_request(self, request: Any, view: Any) -> bool:
        if getattr(view, "throttle_scope", None) != self.scope:
            return True
        self.rate = (flows_settings.THROTTLE_RATES or {}).get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
