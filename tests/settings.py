"""Django settings for the test suite (``DJANGO_SETTINGS_MODULE=tests.settings``).

``default`` is SQLite in a file (not memory) so that the DjangoCheckpointer's
worker threads and the cross-process tests see the same database. When
``FLOWS_TEST_POSTGRES_URL`` is set (``scripts/with-test-services``), a
``postgres`` alias points at that server, and with ``FLOWS_TEST_MARIADB_URL`` a
``mariadb`` alias at that one (through PyMySQL's MySQLdb shim, see
``tests.django.support.use_pymysql``); pytest-django creates its own test
databases there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "flows-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_SQLITE_FILE = os.path.join(tempfile.gettempdir(), f"flows-tests-{os.getpid()}.sqlite3")

DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _SQLITE_FILE,
        "TEST": {"NAME": _SQLITE_FILE},
        "OPTIONS": {
            # several threads and processes write: wait for the lock, take it up front
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    },
}
if os.environ.get("FLOWS_TEST_POSTGRES_URL"):
    DATABASES["postgres"] = dj_database_url.parse(os.environ["FLOWS_TEST_POSTGRES_URL"])
if os.environ.get("FLOWS_TEST_MARIADB_URL"):
    from tests.django.support import use_pymysql

    use_pymysql()
    DATABASES["mariadb"] = dj_database_url.parse(os.environ["FLOWS_TEST_MARIADB_URL"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "flows",
    "tests.storeapp",  # the storage models in a second app (the django-storeapp conformance backend)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.django.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

FLOWS: dict = {}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

REST_FRAMEWORK = {
    # Token first: a client without credentials is told how to authenticate (401 + WWW-Authenticate)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
