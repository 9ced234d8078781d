"""The demo's settings plus the flows the live-server tests need (``tests.live``)."""

from project.settings import *  # noqa: F403
from project.settings import FLOWS

FLOWS = {
    **FLOWS,
    "REGISTRY": {**FLOWS["REGISTRY"], "sleepy": "tests.api.flows.sleepy_flow"},
    "THROTTLE_RATES": {"invoke": "100000/minute"},
}
