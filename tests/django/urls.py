"""URLs for the Django tests: the admin, and everything flows serves."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("flows.urls")),
]
