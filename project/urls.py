"""The demo site's URLs: the admin, and everything ``flows`` serves (its REST API)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "flows demo"
admin.site.site_title = "flows demo"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("flows.urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

# Errors raised before a view runs are JSON on the API's paths too.
handler400 = "flows.api.handlers.bad_request"
handler403 = "flows.api.handlers.permission_denied"
handler404 = "flows.api.handlers.page_not_found"
handler500 = "flows.api.handlers.server_error"
