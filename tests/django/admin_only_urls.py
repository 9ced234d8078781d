"""A site that uses flows without its REST API (the admin only)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
