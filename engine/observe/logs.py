"""JSON log lines: one JSON object per line, for log collectors (Loki, CloudWatch, Datadog,
Workers Logs) that index fields instead of grepping text. ``--log-format json`` locally;
always in the Worker and its Durable Objects (``worker/logs.py``), where Workers Logs
turns each ``console.log`` JSON object into fields.

Fields: ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``, then
``session_id``, ``request_id`` and ``method`` of the request being served
(:mod:`engine.actors.log_context`) when there is one, ``trace_id`` and ``span_id`` when an
OpenTelemetry span is current (else the ``trace_id`` the request's trace context named, as
on Workers, which have no SDK), and ``exception`` (the formatted traceback) when the
record carries one. Encoded by msgspec, so any value is written safely. No SDK needed.
"""

from __future__ import annotations

import logging
import time

import msgspec

from ..actors import log_context, tracing

_encode = msgspec.json.Encoder().encode


def _span_ids() -> tuple[str, str] | None:
    if tracing.TRACER is None:  # no tracer installed: no span can be current
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, object] = {"time": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                                  "logger": record.name, "message": record.getMessage()}
        session_id, request_id, method, trace_id = log_context.CURRENT.get()
        if session_id:
            out["session_id"] = session_id
        if request_id is not None:
            out["request_id"] = request_id
        if method:
            out["method"] = method
        ids = _span_ids()
        if ids is not None:
            out["trace_id"], out["span_id"] = ids
        elif trace_id:
            out["trace_id"] = trace_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        try:
            return _encode(out).decode()
        except (TypeError, msgspec.EncodeError):  # a request id of an odd type: shown, not dropped
            out["request_id"] = repr(request_id)
            return _encode(out).decode()
