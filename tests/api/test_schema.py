"""The OpenAPI schema: valid, and true to the running API (schemathesis)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import ROOT

HERE = Path(__file__).resolve().parent


def test_the_schema_validates_without_warnings(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    schema = (tmp_path / "s.yml").read_text()
    for path in ("/api/flows/{flow}/sessions/{session_id}/invoke/", "/api/flows/{flow}/sessions/{session_id}/state/"):
        assert path in schema


def test_the_served_schema_covers_the_flows_routes_only(server):
    schema = httpx.get(server.url + "/api/schema/?format=json").json()
    assert schema["info"]["title"] == "flows"
    assert sorted(schema["paths"]) == [
        "/api/flows/",
        "/api/flows/{flow}/",
        "/api/flows/{flow}/sessions/",
        "/api/flows/{flow}/sessions/{session_id}/",
        "/api/flows/{flow}/sessions/{session_id}/branches/",
        "/api/flows/{flow}/sessions/{session_id}/checkpoints/",
        "/api/flows/{flow}/sessions/{session_id}/checkpoints/{checkpoint_id}/",
        "/api/flows/{flow}/sessions/{session_id}/invoke/",
        "/api/flows/{flow}/sessions/{session_id}/reset/",
        "/api/flows/{flow}/sessions/{session_id}/runs/",
        "/api/flows/{flow}/sessions/{session_id}/runs/{run_id}/",
        "/api/flows/{flow}/sessions/{session_id}/runs/{run_id}/cancel/",
        "/api/flows/{flow}/sessions/{session_id}/runs/{run_id}/stream/",
        "/api/flows/{flow}/sessions/{session_id}/runs/{run_id}/wait/",
        "/api/flows/{flow}/sessions/{session_id}/state/",
        "/api/flows/{flow}/sessions/{session_id}/stream/",
    ]


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(server, tmp_path):
    with server.client() as http:  # a session with history for the generated requests to work on
        for turn in range(3):
            turn_input = {"messages": [f"turn {turn}"], "status": "s", "counter": 0}
            assert http.post("/api/flows/seed/sessions/fuzz-1/invoke/", json={"input": turn_input}).status_code == 200
        head = http.get("/api/flows/seed/sessions/fuzz-1/").json()["checkpoint_id"]
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
         server.url + "/api/schema/", "--header", f"Authorization: Token {server.tokens['alice']}",
         "--checks", "all",
         # ignored_auth: any one valid credential is enough (a bad cookie beside a good token is fine);
         # use_after_free: invoke creates a session on first use, so a deleted id may live again
         "--exclude-checks", "ignored_auth,use_after_free",
         # streams that follow a session (forever) or a run (until it ends), and waiting for a run to end,
         # are tested against workers in tests/runs; here they would only wait out the request timeout
         "--exclude-operation-id-regex", "^(sessions_stream|runs_stream|runs_wait)$",
         "--max-examples", "25", "--seed", "20261201", "--workers", "1", "--request-timeout", "20",
         "--generation-database", "none", "--no-color"],
        cwd=tmp_path, env={**os.environ, "FLOWS_FUZZ_CHECKPOINT": head}, capture_output=True, text=True, timeout=600,
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    generated = int(re.search(r"(\d+) generated", summary).group(1))
    assert generated >= 300, summary  # a few hundred cases, every operation
