"""The demo site's URLs: the admin, plus the ``flows`` app's URLs once they exist."""

from __future__ import annotations

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "flows demo"
admin.site.site_title = "flows demo"

urlpatterns = [
    path("admin/", admin.site.urls),
]
if find_spec("flows.urls") is not None:  # the REST API and web UI (flows.urls)
    urlpatterns.append(path("", include("flows.urls")))
else:
    urlpatterns.append(path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)))
