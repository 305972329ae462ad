"""A tiny raw HTTP + SSE client for transport tests: no SDK between us and the wire."""

from __future__ import annotations

import json
from typing import Iterator

import httpx

ACCEPT_BOTH = "application/json, text/event-stream"


class Event:
    def __init__(self, event_id: str | None, data: str, retry: int | None):
        self.id = event_id
        self.data = data
        self.retry = retry

    @property
    def message(self) -> dict | None:
        return json.loads(self.data) if self.data.strip() else None

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, data={self.data[:80]!r})"


def events(lines: Iterator[str]) -> Iterator[Event]:
    event_id, data, retry = None, [], None
    for line in lines:
        if line == "":
            if event_id is not None or data:
                yield Event(event_id, "\n".join(data), retry)
            event_id, data, retry = None, [], None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                retry = int(value)


def headers(session_id: str | None = None, version: str | None = "2025-11-25", **extra: str) -> dict:
    out = {"accept": ACCEPT_BOTH, "content-type": "application/json"}
    if session_id:
        out["mcp-session-id"] = session_id
    if version:
        out["mcp-protocol-version"] = version
    out.update(extra)
    return out


def initialize(client: httpx.Client, url: str, version: str = "2025-11-25", capabilities: dict | None = None) -> str:
    """Open a session the way a client must; returns the session id."""
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": capabilities or {},
                       "clientInfo": {"name": "raw-test", "version": "0"}}}
    r = client.post(url, json=body, headers=headers(version=None))
    assert r.status_code == 200, r.text
    assert r.json()["result"]["protocolVersion"] == version
    sid = r.headers["mcp-session-id"]
    r = client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                    headers=headers(sid, version))
    assert r.status_code == 202
    return sid


def call(client: httpx.Client, url: str, sid: str, request_id, method: str, params: dict | None = None,
         version: str = "2025-11-25") -> list[Event]:
    """POST one request and read its whole SSE (or JSON) reply as events."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    with client.stream("POST", url, json=body, headers=headers(sid, version)) as r:
        assert r.status_code == 200, r.read()
        if r.headers["content-type"].startswith("application/json"):
            return [Event(None, r.read().decode(), None)]
        return list(events(r.iter_lines()))


def resume(client: httpx.Client, url: str, sid: str, last_event_id: str) -> list[Event]:
    """GET with Last-Event-ID and read the replayed (and live) events until the stream ends."""
    h = {**headers(sid), "accept": "text/event-stream", "last-event-id": last_event_id}
    with client.stream("GET", url, headers=h) as r:
        assert r.status_code == 200, r.read()
        return list(events(r.iter_lines()))


def start_long_task(client: httpx.Client, url: str, sid: str, request_id, steps: int, interval: float, token):
    """POST the demo's long_task with a progress token; a streaming response context."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "long_task", "arguments": {"steps": steps, "interval_s": interval},
                       "_meta": {"progressToken": token}}}
    return client.stream("POST", url, json=body, headers=headers(sid))


def long_task_until(client: httpx.Client, url: str, sid: str, request_id, steps: int, interval: float, token,
                    progress: int) -> list[Event]:
    """Run long_task and drop the connection right after progress notification ``progress``;
    returns every event seen (priming included), for resuming from the last one."""
    seen: list[Event] = []
    with start_long_task(client, url, sid, request_id, steps, interval, token) as r:
        for ev in events(r.iter_lines()):
            seen.append(ev)
            if ev.message and ev.message["params"]["progress"] == progress:
                break
    return seen
