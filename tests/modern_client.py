"""A raw 2026-07-28 client for the tests: the headers, the ``_meta`` and the body of a
request, one call (JSON or SSE), and a listen stream. No SDK between the test and the wire."""

from __future__ import annotations

import httpx

from sse_client import events

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict:
    h = {"accept": "application/json, text/event-stream", "content-type": "application/json",
         "mcp-protocol-version": V, "mcp-method": method}
    if name is not None:
        h["mcp-name"] = name
    h.update(extra)
    return h


def body(rid, method: str, params: dict | None = None, meta: dict | None = None) -> dict:
    p = dict(params or {})
    p["_meta"] = {**META, **(meta or {})}
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": p}


def call(client: httpx.Client, url: str, rid, method: str, params: dict | None = None, meta: dict | None = None,
         name: str | None = None, **extra_headers: str) -> tuple[httpx.Response, dict, list[dict]]:
    """POST a 2026-07-28 request; (response, final message, notifications before it)."""
    if name is None and params:
        if method in ("tools/call", "prompts/get"):
            name = params.get("name")
        elif method.startswith("tasks/"):
            name = params.get("taskId")
        else:
            name = params.get("uri")
    r = client.post(url, headers=modern_headers(method, name, **extra_headers), json=body(rid, method, params, meta))
    if r.headers["content-type"].startswith("text/event-stream"):
        got = [e.message for e in events(r.text.splitlines()) if e.message]
        return r, got[-1], got[:-1]
    return r, r.json(), []


def listen(client, url, rid, notifications: dict, meta: dict | None = None, **extra_headers: str):
    """Open a ``subscriptions/listen`` stream (read it with ``sse_client.events(r.iter_lines())``)."""
    req = client.build_request("POST", url, headers=modern_headers("subscriptions/listen", **extra_headers),
                               json=body(rid, "subscriptions/listen", {"notifications": notifications}, meta))
    return client.send(req, stream=True)
