"""Helpers for the runs tests against a live server with task workers."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx


def runs_url(flow: str, session_id: str, tail: str = "") -> str:
    return f"/api/flows/{flow}/sessions/{session_id}/runs/{tail}"


def start(http: httpx.Client, flow: str, session_id: str, body: dict) -> dict:
    response = http.post(runs_url(flow, session_id), json=body)
    assert response.status_code == 202, response.text
    return response.json()


def wait(http: httpx.Client, flow: str, session_id: str, run_id: str, timeout: int = 60) -> dict:
    response = http.get(runs_url(flow, session_id, f"{run_id}/wait/"), params={"timeout": timeout},
                        timeout=timeout + 10)
    assert response.status_code == 200, response.text
    return json.loads(response.text)


def events(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> Iterator[tuple[int, str, dict]]:
    """(id, event, data) of each server-sent event at ``url``, as they arrive."""
    with http.stream("GET", url, headers={"Accept": "text/event-stream", **(headers or {})}) as response:
        assert response.status_code == 200, response.read()
        fields: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if fields:
                    yield int(fields["id"]), fields["event"], json.loads(fields["data"])
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


def until(stream: Iterator[tuple[int, str, dict]], event: str, node: str | None = None) -> list[tuple[int, str, dict]]:
    """Reads ``stream`` up to and including the first ``event`` (of ``node``)."""
    seen = []
    for item in stream:
        seen.append(item)
        if item[1] == event and (node is None or item[2].get("node") == node):
            return seen
    raise AssertionError(f"the stream ended before {event} {node or ''}: {[e[1] for e in seen]}")


class Watcher:
    """Reads a stream in a thread from the moment it is open, so a test can act while it watches."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.received: queue.Queue[tuple[int, str, dict]] = queue.Queue()
        self.connected = threading.Event()
        self._closing = False
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, args=(http, url), daemon=True)
        self._thread.start()
        assert self.connected.wait(30), "the stream did not open"

    def _read(self, http: httpx.Client, url: str) -> None:
        try:
            self._stream(http, url)
        except (httpx.HTTPError, RuntimeError):
            if not self._closing:
                raise

    def _stream(self, http: httpx.Client, url: str) -> None:
        with http.stream("GET", url, headers={"Accept": "text/event-stream"}, timeout=None) as response:
            self._response = response
            fields: dict[str, Any] = {}
            for line in response.iter_lines():
                self.connected.set()
                if line.startswith(":"):
                    continue
                if not line:
                    if fields:
                        self.received.put((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                    fields = {}
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value

    def until(self, event: str, timeout: float = 30) -> list[tuple[int, str, dict]]:
        seen = []
        while True:
            item = self.received.get(timeout=timeout)
            seen.append(item)
            if item[1] == event:
                return seen

    def close(self) -> None:
        self._closing = True
        if self._response is not None:
            self._response.close()
        self._thread.join(10)
