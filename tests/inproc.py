"""An in-process client of the shared front: real requests through Front, LocalRuntime and
the actors, with no sockets. For tests that need to reach inside (storage, connections)
while speaking HTTP's terms (status, headers, SSE frames)."""

from __future__ import annotations

import json
from typing import Any

from engine.actors.front import Front, Response, str_headers
from engine.actors.memory_store import MemoryBackend
from engine.actors.session_actor import Lifetimes
from engine.actors.settings import Settings
from engine.local.runtime import LocalRuntime

BASE = {"accept": "application/json, text/event-stream", "content-type": "application/json",
        "host": "127.0.0.1:8000"}


def body_of(payload: Any):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    async def read(limit: int) -> bytes:
        return raw

    return read


def frames(data: bytes) -> list[tuple[str | None, dict | None]]:
    """(event id, message) of each SSE event in ``data``."""
    out = []
    for block in data.decode().split("\n\n"):
        event_id, message = None, None
        for line in block.split("\n"):
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: ") and line[6:].strip():
                message = json.loads(line[6:])
        if event_id is not None or message is not None:
            out.append((event_id, message))
    return out


def messages(data: bytes) -> list[dict]:
    return [m for _, m in frames(data) if m is not None]


class Harness:
    def __init__(self, app, backend=None, lifetimes: Lifetimes | None = None, settings: Settings | None = None):
        settings = settings or Settings()
        if lifetimes is not None:
            settings.lifetimes = lifetimes
        self.runtime = LocalRuntime(app, settings.http, backend or MemoryBackend(), settings.lifetimes)
        self.front = Front(settings, app, b"test-state-key")

    async def request(self, method: str, headers: dict, body: Any = b"", path: str = "/mcp") -> Response:
        return await self.front.handle(method, path, "", {**BASE, **headers}, body_of(body), self.runtime)

    async def initialize(self, capabilities: dict | None = None, initialized: bool = True) -> str:
        r = await self.request("POST", {}, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities or {},
            "clientInfo": {"name": "inproc", "version": "1"}}})
        assert r.status == 200, r.body
        sid = str_headers(r.headers)["mcp-session-id"]
        if initialized:
            await self.post(sid, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        return sid

    async def post(self, sid: str, payload: Any) -> Response:
        return await self.request("POST", {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}, payload)

    async def call(self, sid: str, rid: Any, method: str, params: dict | None = None) -> Response:
        message: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        return await self.post(sid, message)

    async def get(self, sid: str, last_event_id: str | None = None) -> Response:
        headers = {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25", "accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        return await self.request("GET", headers)

    @staticmethod
    async def drain(response: Response) -> bytes:
        """Everything an open stream yields until it ends (the connection, pumped by hand)."""
        out = [response.body]
        conn = response.stream
        while conn is not None:
            data = await conn.next()
            if data is None:
                break
            out.append(data)
        if conn is not None:
            conn.detach()
        return b"".join(out)
