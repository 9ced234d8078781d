"""WebSocket routes for an embedding site's ASGI application (see docs/runs.md)::

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from flows.live.auth import TokenAuthMiddleware
    from flows.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    })
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import path

from flows.live.consumers import SessionConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

# The type is what channels' URLRouter takes; django-stubs types path() for views, not ASGI apps.
websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    path("ws/flows/<str:flow>/sessions/<str:session_id>/", SessionConsumer.as_asgi(), name="flows-session-socket"),  # type: ignore[arg-type, list-item]
]
