"""The Django site the Django-side sections measure in this process: one fresh PostgreSQL database.

Django is set up once per process, so every section that needs it shares the
database made here (migrated, dropped at exit). Servers the sections start
(``tests.servers.start_server``) use it too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_database_url: str | None = None


def django_on_postgres() -> str:
    """Sets Django up (the demo's settings plus the tests' flows) on a fresh database; returns its URL."""
    global _database_url
    if _database_url is not None:
        return _database_url
    sys.path.insert(0, str(ROOT))
    from tests.servers import fresh_postgres_database

    stack = contextlib.ExitStack()
    url = stack.enter_context(fresh_postgres_database())
    atexit.register(stack.close)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.api.live_settings", DATABASE_URL=url, DEBUG="0", LOG_LEVEL="WARNING",
        SECRET_KEY="bench-" + uuid.uuid4().hex, ALLOWED_HOSTS="127.0.0.1,localhost", FLOWS_DEMO_TOKEN_DELAY="0",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    _database_url = url
    return url
