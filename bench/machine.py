"""What the numbers were measured on: machine, Python, packages, servers, load."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from backends import env_url, mysql_connect

PACKAGES = (
    "llmfy",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint-postgres",
    "SQLAlchemy",
    "psycopg2-binary",
    "asyncpg",
    "psycopg",
    "aiosqlite",
    "PyMySQL",
    "aiomysql",
    "redis",
    "hiredis",
)


def describe() -> list[str]:
    lines = [
        (
            f"machine: {os.cpu_count()} cpus, {platform.machine()}, {platform.system()} {platform.release()}; "
            f"load average {load()}"
        ),
        f"python {sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}",
        f"flows {git_revision()}",
        "packages: " + ", ".join(f"{p} {version(p)}" for p in PACKAGES),
        "servers: " + "; ".join(servers()),
    ]
    return lines


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "flows"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return rev + (" (flows/ has uncommitted changes)" if dirty else "")


def servers() -> list[str]:
    found = []
    if url := env_url("FLOWS_TEST_POSTGRES_URL"):
        import psycopg2

        conn = psycopg2.connect(url)
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            pg = cur.fetchone()[0]
            cur.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            fsync, sync_commit = cur.fetchone()
        conn.close()
        found.append(f"PostgreSQL {pg} (fsync={fsync}, synchronous_commit={sync_commit})")
    if url := env_url("FLOWS_TEST_MARIADB_URL"):
        conn = mysql_connect(url)
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit")
            ver, flush = cur.fetchone()
        conn.close()
        found.append(f"MariaDB {ver} (innodb_flush_log_at_trx_commit={flush})")
    if url := env_url("FLOWS_TEST_REDIS_URL"):
        import redis

        client = redis.Redis.from_url(url)
        info = client.info("server")
        persistence = client.config_get("appendonly")
        client.close()
        found.append(f"Redis {info['redis_version']} (appendonly={persistence.get('appendonly')})")
    found.append("all on loopback, on the same machine")
    return found
