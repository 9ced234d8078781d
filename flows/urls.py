"""Everything ``flows`` serves, for an embedding site: ``path("", include("flows.urls"))``.

The REST API answers under ``api/`` (``api/flows/``, ``api/schema/``,
``api/docs/``), and owns that prefix: any other path under it is a JSON 404.
A site with an ``api/`` of its own mounts flows under a prefix instead
(``path("chat/", include("flows.urls"))`` -> ``chat/api/flows/``).
The web UI's pages are the rest (namespace ``flows-ui``): its home at the
mount point, a session's page at ``flows/{flow}/sessions/{session_id}/``.
"""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("api/", include("flows.api.urls")),
    path("", include("flows.ui.urls")),
]
