"""Token authentication for sockets, next to Channels' session-cookie ``AuthMiddlewareStack``.

Browsers cannot set headers on a WebSocket, so the token comes as a
subprotocol — ``new WebSocket(url, ["flows", "token.<key>"])``, answered with
the ``flows`` subprotocol — or, for clients that can do neither, in the query
string (``?token=<key>``; it then shows in server logs: prefer the
subprotocol). Tokens are DRF's (``rest_framework.authtoken``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.apps import apps

from flows.checkpointer import run_in_orm_thread

SUBPROTOCOL = "flows"
TOKEN_PREFIX = "token."


def _token_of(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or ():
        if protocol.startswith(TOKEN_PREFIX):
            return protocol[len(TOKEN_PREFIX):]
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _user_of(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None


class TokenAuthMiddleware:
    """Sets ``scope["user"]`` from a token when the session cookie gave no user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            scope = dict(scope)
            if SUBPROTOCOL in (scope.get("subprotocols") or ()):
                scope["flows_subprotocol"] = SUBPROTOCOL
            user = scope.get("user")
            key = _token_of(scope)
            signed_in = user is not None and user.is_authenticated
            if key and not signed_in and apps.is_installed("rest_framework.authtoken"):
                found = await run_in_orm_thread(_user_of, key)
                if found is not None:
                    scope["user"] = found
        return await self.inner(scope, receive, send)
