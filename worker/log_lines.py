"""Structured logs from the Worker and its Durable Objects: one JSON object per line.

Workers Logs (``[observability]`` in wrangler.toml) turns a ``console.log`` of a JSON object
into indexed fields; Python's ``print`` is ``console.log`` here. Each line has the fields the
local server's ``--log-format json`` writes (:mod:`engine.observe.logs`): time, level,
logger, message, the session, request id and method being served, and the trace id the
request's trace context named (``params._meta.traceparent``, else the ``traceparent``
header, which the Worker passes on to the object). ``LOG_LEVEL`` (as ``--log-level``:
warning by default) sets how much is written.
"""

from __future__ import annotations

import logging

from engine.actors.settings import BY_FLAG, parse_value
from engine.observe.logs import JsonFormatter

_installed: list = []


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), flush=True)
        except Exception:
            self.handleError(record)


def install(env) -> None:
    """Once per isolate: the root logger writes JSON lines at ``LOG_LEVEL``."""
    if _installed:
        return
    raw = getattr(env, "LOG_LEVEL", None)
    level = parse_value(BY_FLAG["--log-level"], str(raw)) if raw else BY_FLAG["--log-level"].default
    handler = _ConsoleHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if level == "trace" else level.upper())
    _installed.append(handler)
