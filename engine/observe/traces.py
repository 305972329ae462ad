"""Traces: one SERVER span per MCP request, per OpenTelemetry's MCP conventions.

On when ``OTEL_TRACES_EXPORTER=otlp``; spans go out in batches over OTLP/HTTP (the
standard ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*`` variables apply). The span is made
when the answer has been sent, with the times the request really took, so the request
path carries no span context and pays nothing until then.

Its parent is the trace context the client put in the request's ``params._meta``
(``traceparent``, ``tracestate``), as the conventions ask; a ``traceparent`` header (an
HTTP hop's context) becomes a link instead, since one MCP request may span several HTTP
requests and one HTTP request may carry several MCP messages.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..protocol.jsonrpc import Message

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = ("traceparent", "tracestate")
_NAMING_A_URI = frozenset(("resources/read", "resources/subscribe", "resources/unsubscribe"))


class Traces:
    def __init__(self, resource: Resource):
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("mcp-actors")

    def record(self, seconds: float, msg: Message, attributes: dict[str, Any], headers: Mapping[str, str],
               target: str | None) -> None:
        """The span of one answered request: named ``{method} {target}`` (the tool or prompt)."""
        params = msg.params if isinstance(msg.params, dict) else {}
        meta = params.get("_meta")
        carrier = {k: meta[k] for k in _CARRIED if isinstance(meta, dict) and isinstance(meta.get(k), str)}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        links = []
        if "traceparent" in headers:
            hop = get_current_span(_PROPAGATOR.extract({k: headers[k] for k in _CARRIED if k in headers}))
            if hop.get_span_context().is_valid:
                links.append(Link(hop.get_span_context()))
        span_attributes = dict(attributes)
        if msg.id is not None:
            span_attributes["jsonrpc.request.id"] = str(msg.id)
        uri = params.get("uri")
        if isinstance(uri, str) and msg.method in _NAMING_A_URI:  # on spans only: too many values for a metric
            span_attributes["mcp.resource.uri"] = uri
        session = headers.get("mcp-session-id")
        if session:
            span_attributes["mcp.session.id"] = session
        end = time.time_ns()
        name = f"{msg.method} {target}" if target else str(msg.method)
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=span_attributes,
                                      links=links, start_time=end - int(seconds * 1e9))
        if "error.type" in attributes:
            span.set_status(Status(StatusCode.ERROR, attributes["error.type"]))
        span.end(end_time=end)
