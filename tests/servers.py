"""A real server for the tests that talk HTTP: the demo project under uvicorn, in a subprocess.

:func:`start_server` migrates a database of its own (an SQLite file, or a fresh
PostgreSQL database), creates the users the tests sign in as with their API
tokens, starts ``uvicorn project.asgi:application`` with as many worker
processes as asked, and waits until it answers. Settings are the demo's, plus
the flows in ``tests.api.live_settings``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.backends import service_url

ROOT = Path(__file__).resolve().parent.parent
USERS = ("alice", "bob", "carol")  # carol never starts a session

_SETUP = """
import json, django
django.setup()
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
tokens = {}
for name in %r:
    user = User.objects.create_user(name, password="pw")
    tokens[name] = Token.objects.create(user=user).key
print(json.dumps(tokens))
"""


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    tokens: dict[str, str]
    log: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    #: the task workers (``manage.py db_worker``) executing background runs
    workers: list[subprocess.Popen] = field(default_factory=list)

    def headers(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[user]}"}

    def client(self, user: str = "alice", **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(user), timeout=60, **options)

    def async_client(self, user: str = "alice", **options) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers(user), timeout=60, **options)

    def what_it_is_doing(self) -> str:
        """For a test's failure message: the server's threads (dumped by ``faulthandler`` on SIGUSR1,
        see ``tests.api.live_settings``), the end of its log and, on PostgreSQL, the database's busy sessions."""
        self.process.send_signal(signal.SIGUSR1)
        time.sleep(1)  # the dump is written by the server process; nothing to wait on from here
        said = [f"server log:\n{self.log.read_text()[-6000:]}"]
        database = self.env.get("DATABASE_URL", "")
        if database.startswith("postgres"):
            import psycopg2

            with contextlib.closing(psycopg2.connect(database)) as connection, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid, state, wait_event_type, wait_event, now() - xact_start, left(query, 200)"
                    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
                said.append("database sessions:\n" + "\n".join(map(repr, cursor.fetchall())))
        return "\n".join(said)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _wait_until_ready(url: str, process: subprocess.Popen, log: Path, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/api/schema/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {limit:g}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _uvicorn(
    workdir: Path, env: dict[str, str], workers: int = 1, access_log: bool = False,
) -> tuple[str, subprocess.Popen, Path]:
    """Starts ``uvicorn project.asgi:application`` on a free port: its URL, process and log."""
    port = free_port()
    log = workdir / f"uvicorn-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers), "--lifespan", "off",
             "--access-log" if access_log else "--no-access-log"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    return f"http://127.0.0.1:{port}", process, log


def _stop(*children: subprocess.Popen) -> None:
    """Terminates ``children`` together, killing any that has not ended 10 s later."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def start_server(
    workdir: Path, *, database_url: str | None = None, workers: int = 1, task_workers: int = 0,
    env: dict[str, str] | None = None, access_log: bool = False,
) -> Iterator[LiveServer]:
    """A server on 127.0.0.1 for the duration of the block (its database is new).

    ``workers`` uvicorn worker processes serve HTTP; ``task_workers`` processes
    of ``manage.py db_worker`` execute background runs; ``access_log`` writes every request to ``log``.
    """
    database_url = database_url or f"sqlite:///{workdir / 'live.sqlite3'}"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DJANGO_SETTINGS_MODULE": "tests.api.live_settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "live-tests-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    _run([sys.executable, "manage.py", "migrate", "-v0"], full_env)
    tokens = json.loads(_run([sys.executable, "-c", _SETUP % (USERS,)], full_env).strip().splitlines()[-1])
    url, process, log = _uvicorn(workdir, full_env, workers, access_log)
    task_processes = []
    try:
        for n in range(task_workers):
            with open(workdir / f"worker-{url.rsplit(':', 1)[1]}-{n}.log", "w") as out:
                task_processes.append(subprocess.Popen(
                    [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay",
                     "--no-reload", "--worker-id", f"w{n}"],
                    cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                ))
        _wait_until_ready(url, process, log)
        yield LiveServer(url, process, tokens, log, full_env, task_processes)
    finally:
        _stop(process, *task_processes)


@contextlib.contextmanager
def another_server(live: LiveServer, workdir: Path) -> Iterator[str]:
    """A second uvicorn process on ``live``'s database and settings (its own port); yields its URL."""
    url, process, log = _uvicorn(workdir, live.env)
    try:
        _wait_until_ready(url, process, log)
        yield url
    finally:
        _stop(process)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL server, dropped afterwards."""
    import psycopg2

    server = service_url("postgres")
    name = f"flows_live_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(server)
        yield urlunsplit(parts._replace(path=f"/{name}"))
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()
