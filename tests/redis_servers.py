"""Real Redis servers to break connections on: a server of the test's own, and a relay.

The shared server of ``scripts/with-test-services`` serves every pytest-xdist
worker, so a test must not ``CONFIG SET timeout`` or ``CLIENT KILL TYPE normal``
on it: :func:`private_redis` starts a throwaway ``redis-server`` (the same
binary) for such a test. :class:`Relay` sits between a client and a server to
cut connections, or to swallow one reply, on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis

_SBIN = ":/usr/local/sbin:/usr/sbin:/sbin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[str]:
    """A ``redis-server`` of this test's own (no persistence); yields its URL."""
    binary = shutil.which("redis-server", path=os.environ.get("PATH", "") + _SBIN)
    if binary is None:
        raise RuntimeError("redis-server is missing: run the tests with scripts/with-test-services")
    with tempfile.TemporaryDirectory(prefix="flows-redis-") as directory:
        port = free_port()
        server = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory, "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--logfile", os.path.join(directory, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = aioredis.Redis.from_url(url)
            deadline = time.monotonic() + 30
            while True:
                try:
                    await client.ping()
                    break
                except aioredis.ConnectionError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log = Path(directory, "log")
                        raise RuntimeError(f"redis-server on port {port} did not start: "
                                           + (log.read_text() if log.exists() else "no log")) from None
                    await asyncio.sleep(0.02)
            await client.aclose()
            yield url
        finally:
            server.terminate()
            server.wait(10)


async def connections_named(admin: aioredis.Redis, name: str) -> list[int]:
    """Ids of the server's connections named ``name`` (``CLIENT SETNAME``, or ``?client_name=`` in a URL)."""
    return [int(client["id"]) for client in await admin.client_list() if client["name"] == name]


class Relay:
    """A TCP relay to a real server, to cut its connections on demand."""

    def __init__(self, server: asyncio.Server, writers: list[asyncio.StreamWriter]) -> None:
        self.server = server
        self.writers = writers
        self.port = server.sockets[0].getsockname()[1]
        #: a request containing these bytes has its reply swallowed, and its connection cut
        self.drop_reply_to: bytes | None = None
        #: how many replies were swallowed
        self.dropped = 0
        self.handlers: set[asyncio.Task] = set()

    @classmethod
    async def start(cls, host: str, port: int) -> Relay:
        writers: list[asyncio.StreamWriter] = []
        relay: Relay

        class Link:
            """One relayed connection: its two sides, and whether its next reply is swallowed."""

            def __init__(self, *sides: asyncio.StreamWriter) -> None:
                self.sides = sides
                self.swallow = False

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link,
                       upstream: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if upstream and relay.drop_reply_to is not None and relay.drop_reply_to in data:
                        relay.drop_reply_to = None
                        link.swallow = True  # the server runs the command; its client never hears back
                    elif not upstream and link.swallow:
                        relay.dropped += 1
                        break
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()
                if link.swallow:
                    for side in link.sides:
                        side.close()

        async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
            relay.handlers.add(asyncio.current_task())  # type: ignore[arg-type]
            server_reader, server_writer = await asyncio.open_connection(host, port)
            writers.extend((client_writer, server_writer))
            link = Link(client_writer, server_writer)
            await asyncio.gather(
                pipe(client_reader, server_writer, link, True), pipe(server_reader, client_writer, link, False)
            )

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        relay = cls(server, writers)
        return relay

    async def stop(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.handlers, return_exceptions=True)  # each ends on its closed sockets
        await self.server.wait_closed()
