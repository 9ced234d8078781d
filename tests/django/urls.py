"""URLs for the Django tests: the admin, and everything flows serves."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("flows.urls")),
]

handler400 = "flows.api.handlers.bad_request"
handler403 = "flows.api.handlers.permission_denied"
handler404 = "flows.api.handlers.page_not_found"
handler500 = "flows.api.handlers.server_error"
