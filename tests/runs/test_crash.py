"""A task worker killed mid-run: another worker finishes the run from its last checkpoint."""

from __future__ import annotations

import os
import signal
from collections import Counter

from tests.runs.live import events, runs_url, start, until, wait
from tests.servers import fresh_postgres_database, start_server


def test_a_killed_workers_run_is_finished_by_another_without_running_finished_nodes_again(tmp_path):
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {"FLOWS_TEST_STEP_SECONDS": "0.5", "FLOWS_TEST_COUNT_DIR": str(counts), "FLOWS_DEMO_TOKEN_DELAY": "0",
           "FLOWS_TEST_LEASE_SECONDS": "2", "FLOWS_TEST_RUN_STALE_SECONDS": "2"}
    with fresh_postgres_database() as database, start_server(tmp_path, database_url=database, task_workers=2,
                                                            env=env) as live, live.client() as http:
        run = start(http, "steps", "crash", {"input": {"messages": ["go"], "label": "crash"}})
        until(events(http, runs_url("steps", "crash", f"{run['run_id']}/stream/")), "node_finished", "a")
        running = http.get(runs_url("steps", "crash", f"{run['run_id']}/")).json()
        pid = int(running["worker"].rsplit(":", 1)[1])
        victim = next(worker for worker in live.workers if worker.pid == pid)
        os.kill(victim.pid, signal.SIGKILL)  # mid-way through node b
        victim.wait()
        done = wait(http, "steps", "crash", run["run_id"])
    assert done["status"] == "succeeded", done
    assert done["state"]["messages"] == ["go", "a", "b", "c", "d"]
    assert done["worker"] != running["worker"]
    assert Counter((counts / "crash.log").read_text().split()) == {"a": 1, "b": 1, "c": 1, "d": 1}
