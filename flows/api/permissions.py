"""Who may call the API, and whose sessions they reach.

A session belongs to the user who created it (first invoke, or ``POST``
sessions). Every route on a session someone else owns answers 404, as if it
did not exist; staff reach every session. With ``FLOWS["ANONYMOUS"] = True``
callers need not sign in: the sessions they create have no owner and anyone
who knows a session's id reaches it (use the server's random ids then).
Ownerless sessions made by the admin or the management commands are staff
only unless anonymous access is on.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from flows.conf import flows_settings
from flows.sessions import may_access, owner_id_for

__all__ = ["IsAuthenticatedOrAnonymousAllowed", "may_access", "owner_id_for"]


class IsAuthenticatedOrAnonymousAllowed(BasePermission):
    """Signed-in users; anyone when ``FLOWS["ANONYMOUS"]`` is on (off by default)."""

    message = "Sign in first: this API does not take anonymous calls (FLOWS['ANONYMOUS'] is off)."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(flows_settings.ANONYMOUS or (request.user and request.user.is_authenticated))
