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


class IsAuthenticatedOrAnonymousAllowed(BasePermission):
    """Signed-in users; anyone when ``FLOWS["ANONYMOUS"]`` is on (off by default)."""

    message = "Sign in first: this API does not take anonymous calls (FLOWS['ANONYMOUS'] is off)."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(flows_settings.ANONYMOUS or (request.user and request.user.is_authenticated))


def owner_id_for(user: Any) -> int | None:
    """The owner a new session gets: the signed-in user, or none."""
    return user.pk if user is not None and user.is_authenticated else None


def may_access(user: Any, owner_id: int | None) -> bool:
    """Whether ``user`` reaches a session owned by ``owner_id`` (``None``: no owner)."""
    if user is not None and user.is_authenticated:
        if user.is_staff:
            return True
        if owner_id is not None:
            return owner_id == user.pk
    return owner_id is None and bool(flows_settings.ANONYMOUS)
