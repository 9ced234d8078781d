"""The demo's settings plus the flows the live-server tests need (``tests.servers``).

``FLOWS_TEST_LEASE_SECONDS`` and ``FLOWS_TEST_RUN_STALE_SECONDS`` shorten how
long a killed worker holds a session, for the crash tests.
"""

import faulthandler
import hashlib
import os
import signal

from project.settings import *  # noqa: F403
from project.settings import DATABASES, FLOWS

# SIGUSR1 writes every thread's stack to the server's log (LiveServer.what_it_is_doing)
faulthandler.register(signal.SIGUSR1, all_threads=True)

FLOWS = {
    **FLOWS,
    "REGISTRY": {
        **FLOWS["REGISTRY"],
        "sleepy": "tests.api.flows.sleepy_flow",
        "steps": "tests.api.flows.steps_flow",
        "flaky": "tests.ui.flows.flaky_flow",
        "tail": "tests.ui.flows.tail_flow",
    },
    "THROTTLE_RATES": {"invoke": "100000/minute"},
    "LEASE_SECONDS": float(os.environ.get("FLOWS_TEST_LEASE_SECONDS", "30")),
    "RUN_STALE_SECONDS": float(os.environ.get("FLOWS_TEST_RUN_STALE_SECONDS", "30")),
    # the servers of one test share a database, and so their Redis keys; other tests' do not
    "EVENTS_REDIS_PREFIX": "flows:events:" + hashlib.sha256(repr(DATABASES["default"]).encode()).hexdigest()[:12] + ":",
}
