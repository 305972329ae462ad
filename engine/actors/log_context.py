"""What a log line is about: the session, request and method being served, per task.

The front sets it once per request (a context variable: each request runs in a task of
its own, and the tasks it starts inherit it), and the JSON log formatter
(:mod:`engine.local.logs`) reads it, so a warning from deep in an actor names the request
it happened in without anything passing it along. It holds ids and a method name only,
never a token or a tool's arguments.
"""

from __future__ import annotations

import contextvars

#: (session id or "", JSON-RPC request id or None, method or "") of the request being served.
CURRENT: contextvars.ContextVar[tuple[str, object, str]] = contextvars.ContextVar(
    "mcp_actors_request", default=("", None, ""))


def serving(session_id: str | None, request_id: object, method: str | None) -> None:
    CURRENT.set((session_id or "", request_id, method or ""))
