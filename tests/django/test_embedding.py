"""A separate, minimal Django site adopts ``flows`` from a built wheel.

The site has its own settings and URLs (nothing from ``project/``) and runs in
a fresh virtualenv where ``flows`` is installed only from the wheel. Its other
dependencies (Django, DRF, ...) come from this environment through a path
entry, which adds their directory to ``sys.path`` without running its ``.pth``
files, so this checkout's editable install of ``flows`` stays invisible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SETTINGS = """
    SECRET_KEY = "embedding-test"
    DEBUG = True
    ALLOWED_HOSTS = ["*"]
    USE_TZ = True
    ROOT_URLCONF = "site_urls"
    INSTALLED_APPS = [
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
        "rest_framework", "drf_spectacular", "drf_spectacular_sidecar", "flows",
    ]
    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                  "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                     "django.contrib.auth.context_processors.auth",
                                                     "django.contrib.messages.context_processors.messages"]}}]
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "site.sqlite3",
                             "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30}}}
    STATIC_URL = "/static/"
    FLOWS = {"REGISTRY": {"greeter": "site_flows.build"}}
"""

URLS = """
    from django.contrib import admin
    from django.urls import include, path

    urlpatterns = [path("admin/", admin.site.urls), path("chat/", include("flows.urls"))]
"""

FLOWS = """
    import operator
    from typing import Annotated, TypedDict

    from flows.engine import END, START, FlowEngine


    class State(TypedDict):
        messages: Annotated[list, operator.add]
        greeted: int


    def greet(state):
        return {"messages": [f"hello, {state['messages'][-1]}"], "greeted": state.get("greeted", 0) + 1}


    def build(checkpointer=None, hooks=None):
        flow = FlowEngine(State, checkpointer=checkpointer, hooks=hooks)
        flow.add_node("greet", greet)
        flow.add_edge(START, "greet")
        flow.add_edge("greet", END)
        return flow.build()
"""

CHECK = """
    import django, flows, os, sys
    django.setup()
    from django.test import Client
    from django.contrib.auth.models import User
    assert flows.__file__.startswith(sys.argv[1]), flows.__file__
    User.objects.create_superuser("root", "", "pw")
    client = Client()
    assert client.login(username="root", password="pw")
    page = client.get("/admin/flows/flowsession/1/change/")
    assert page.status_code == 200 and b"Ada" in page.content, page.status_code
    answer = client.post("/chat/api/flows/greeter/sessions/s2/invoke/", {"input": {"messages": ["Bo"]}},
                         content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == {"messages": ["Bo", "hello, Bo"], "greeted": 1}, answer.json()
    assert client.get("/chat/api/nope").json()["code"] == "not_found"
    print("ok")
"""


# The site's own tests of its flow, with Django's TestCase and flows.testing.
SITE_TESTS = """
from django.test import TestCase

from flows.testing import HiddenWritesError, override_flows, run


@override_flows()
class GreeterTests(TestCase):
    def test_greets_and_counts(self):
        run("greeter", {"messages": ["Cy"]}, session_id="t")
        state = run("greeter", {"messages": ["Di"]}, session_id="t")
        self.assertEqual(state["greeted"], 2)


class WithTheDatabaseStore(TestCase):
    def test_says_what_to_do(self):
        with self.assertRaisesMessage(HiddenWritesError, "flows.testing.override_flows()"):
            run("greeter", {"messages": ["Cy"]})
"""


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_separate_site_adopts_flows_from_a_wheel(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT), cwd=tmp_path)
    wheel = next(dist.glob("django_persistent_flows-*.whl"))

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    site_packages = Path(purelib.strip())
    # the dependencies are this environment's (no network): pip sees them as installed
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel), cwd=tmp_path)
    # then by the distribution's name with extras, as the README says: they exist and are satisfied
    extras = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--find-links", str(dist),
                             "django-persistent-flows[redis,django]"], cwd=tmp_path, capture_output=True, text=True)
    assert extras.returncode == 0 and "does not provide the extra" not in extras.stdout + extras.stderr, extras
    assert "Location: " + str(site_packages) in run(str(python), "-m", "pip", "show", "django-persistent-flows",
                                                    cwd=tmp_path)

    site = tmp_path / "site"
    site.mkdir()
    for name, body in (("site_settings.py", SETTINGS), ("site_urls.py", URLS), ("site_flows.py", FLOWS),
                       ("check_site.py", CHECK), ("site_tests.py", SITE_TESTS)):
        (site / name).write_text(textwrap.dedent(body))
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "site_settings", "PYTHONPATH": str(site)}

    def manage(*args: str) -> str:
        return run(str(python), "-m", "django", *args, cwd=site, env=env)

    manage("check")
    manage("migrate", "-v0")
    assert "greeter  site_flows.build" in manage("flows_list")
    state = json.loads(manage("flows_invoke", "greeter", "s1", "--input", '{"messages": ["Ada"]}'))
    assert state == {"messages": ["Ada", "hello, Ada"], "greeted": 1}
    assert json.loads(manage("flows_state", "greeter", "s1"))["greeted"] == 1
    assert "ok" in run(str(python), "check_site.py", str(site_packages), cwd=site, env=env)
    tested = subprocess.run([str(python), "-m", "django", "test", "site_tests", "-v2"], cwd=site, env=env,
                            capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0 and "Ran 2 tests" in tested.stderr and "OK" in tested.stderr, tested.stderr
