"""A stand-in for a chat model, so the demo runs with no API key.

``stream_reply`` yields a reply token by token, the way a streaming chat API
does. To use a real model, keep the node code and replace the body, e.g. with
the OpenAI SDK::

    from openai import AsyncOpenAI

    client = AsyncOpenAI()  # reads OPENAI_API_KEY

    async def stream_reply(draft: str, *, history: list[dict]) -> AsyncIterator[str]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": SYSTEM_PROMPT + "\\nFacts: " + draft}, *history],
            stream=True,
        )
        async for part in stream:
            if part.choices and part.choices[0].delta.content:
                yield part.choices[0].delta.content

Nodes are retried and checkpointed by the engine: give a model call a
``RetryPolicy`` and a ``timeout`` in ``add_node`` rather than retrying here.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

_TOKENS = re.compile(r"\S+\s*")


def token_delay() -> float:
    """Seconds between tokens (``FLOWS_DEMO_TOKEN_DELAY``; 0 in tests)."""
    return float(os.environ.get("FLOWS_DEMO_TOKEN_DELAY", "0.03"))


async def stream_reply(draft: str, *, history: list[dict] | None = None) -> AsyncIterator[str]:
    """Streams ``draft`` word by word (a real model would write it from the history)."""
    delay = token_delay()
    for token in _TOKENS.findall(draft):
        if delay:
            await asyncio.sleep(delay)
        yield token
