"""The demo site's URLs: the admin, sign-in pages, and everything ``flows`` serves (its UI and REST API)."""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "flows demo"
admin.site.site_title = "flows demo"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # the admin's pages name no icon: browsers ask for /favicon.ico
    path("favicon.ico", RedirectView.as_view(url=static("flows/favicon.svg"), permanent=True)),
    path("", include("flows.urls")),  # the UI's home at /, the API under /api/
]

# Errors raised before a view runs are JSON on the API's paths too.
handler400 = "flows.api.handlers.bad_request"
handler403 = "flows.api.handlers.permission_denied"
handler404 = "flows.api.handlers.page_not_found"
handler500 = "flows.api.handlers.server_error"
