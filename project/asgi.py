"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Static files (the admin's CSS and JS) are served by the app itself, like
``runserver`` does, so ``uvicorn project.asgi:application`` is a complete demo.
In production, run ``collectstatic`` and set ``SERVE_STATIC=0`` to let the web
server do it.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

http_application = django_application
if os.environ.get("SERVE_STATIC", "1") != "0":
    http_application = ASGIStaticFilesHandler(django_application)

from flows.live.auth import TokenAuthMiddleware  # noqa: E402
from flows.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application,
        # origin checked against ALLOWED_HOSTS; the user from the session cookie, or a token
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
