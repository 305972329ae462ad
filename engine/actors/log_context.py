"""What a log line is about: the session, request and method being served, per task.

The runtime adapter sets it once per request, when its message has been read (a context
variable: each request runs in a task of its own, and the tasks it starts inherit it), and
the JSON log formatter (:mod:`engine.observe.logs`) reads it, so a warning from deep in an
actor names the request it happened in without anything passing it along. It holds ids, a
method name and the trace id the request's trace context names, never a token or a tool's
arguments.
"""

from __future__ import annotations

import contextvars
from typing import Any

from ..protocol.jsonrpc import UNSET, Message

#: (session id or "", JSON-RPC request id or None, method or "", trace id or "") of the
#: request being served.
CURRENT: contextvars.ContextVar[tuple[str, object, str, str]] = contextvars.ContextVar(
    "mcp_actors_request", default=("", None, "", ""))


def serving(session_id: str | None, msg: Message, traceparent: Any = None) -> None:
    """``traceparent``: the HTTP header's, used when ``params._meta`` carries none."""
    params = msg.params
    meta = params.get("_meta") if isinstance(params, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
        traceparent = meta["traceparent"]
    CURRENT.set((session_id or "", msg.id if msg.id is not UNSET else None, msg.method or "",
                 trace_id(traceparent)))


def trace_id(traceparent: Any) -> str:
    """The trace id a W3C ``traceparent`` names (``00-<32 hex>-<16 hex>-<2 hex>``), or ""."""
    if not isinstance(traceparent, str) or len(traceparent) < 55 or traceparent[2] != "-":
        return ""
    candidate = traceparent[3:35]
    try:
        int(candidate, 16)
    except ValueError:
        return ""
    return candidate if candidate != "0" * 32 and traceparent[35] == "-" else ""
