"""What the numbers were measured on: machine, Python, packages, servers, load."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
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


def describe(found: list[Server] | None = None) -> list[str]:
    lines = [
        (
            f"machine: {os.cpu_count()} cpus, {platform.machine()}, {platform.system()} {platform.release()}; "
            f"load average {load()}"
        ),
        f"python {sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}",
        f"flows {git_revision()}",
        "packages: " + ", ".join(f"{p} {version(p)}" for p in PACKAGES),
        "servers: " + "; ".join(servers(found)),
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


@dataclass
class Server:
    """One server's version and durability settings, as the server itself reports them."""

    name: str
    version: str
    settings: dict[str, str]
    durable: bool

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} {self.version} ({shown})"


def ask_servers() -> list[Server]:
    """Asks each server named by the FLOWS_TEST_*_URL variables how durable it is."""
    found = []
    if url := env_url("FLOWS_TEST_POSTGRES_URL"):
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level")
                values = {}
                for name in names:
                    cur.execute(f"SHOW {name}")
                    values[name] = cur.fetchone()[0]
        finally:
            conn.close()
        version = values.pop("server_version")
        durable = (
            values["fsync"] == "on"
            and values["synchronous_commit"] == "on"
            and values["full_page_writes"] == "on"
        )
        found.append(Server("PostgreSQL", version, values, durable))
    if url := env_url("FLOWS_TEST_MARIADB_URL"):
        conn = mysql_connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@innodb_doublewrite, "
                    "@@log_bin, @@sync_binlog"
                )
                version, flush, doublewrite, log_bin, sync_binlog = cur.fetchone()
        finally:
            conn.close()
        settings = {"innodb_flush_log_at_trx_commit": str(flush), "innodb_doublewrite": str(doublewrite)}
        settings["log_bin"] = str(log_bin)
        if log_bin:
            settings["sync_binlog"] = str(sync_binlog)
        durable = str(flush) == "1" and (not log_bin or str(sync_binlog) == "1")
        found.append(Server("MariaDB", version, settings, durable))
    if url := env_url("FLOWS_TEST_REDIS_URL"):
        import redis

        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            version = client.info("server")["redis_version"]
            settings = {**client.config_get("appendonly"), **client.config_get("appendfsync")}
        finally:
            client.close()
        durable = settings.get("appendonly") == "yes" and settings.get("appendfsync") in (
            "everysec",
            "always",
        )
        found.append(Server("Redis", version, settings, durable))
    return found


def durability(found: list[Server]) -> str:
    """``durable``, ``fast`` (durability off), ``mixed``, or ``none`` (no server)."""
    if not found:
        return "none"
    if all(s.durable for s in found):
        return "durable"
    if not any(s.durable for s in found):
        return "fast"
    return "mixed"


def servers(found: list[Server] | None = None) -> list[str]:
    lines = [s.describe() for s in (ask_servers() if found is None else found)]
    lines.append("all on loopback, on the same machine")
    return lines
