"""One worker process of the cross-process lock test.

``python -m tests.django.crossprocess_worker SPEC_JSON SESSION NAME COUNT``
rebuilds the checkpointer from the backend spec and appends COUNT messages to
SESSION, one invoke each.
"""

from __future__ import annotations

import asyncio
import sys

from tests.backends import BackendSpec


async def main(spec_json: str, session_id: str, name: str, count: int) -> None:
    checkpointer = BackendSpec.from_json(spec_json).create()
    from tests.flows_fixtures import seed_flow

    flow = seed_flow(checkpointer)
    for i in range(count):
        await flow.invoke({"messages": [f"{name}-{i}"]}, session_id=session_id)


if __name__ == "__main__":
    spec, session, worker, times = sys.argv[1:5]
    asyncio.run(main(spec, session, worker, int(times)))
