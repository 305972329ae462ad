"""Traces: a SERVER span per MCP request, per OpenTelemetry's MCP conventions, and the
child spans where its time goes. The :class:`engine.actors.tracing.Tracer` the actors call.

On when ``OTEL_TRACES_EXPORTER=otlp``; spans go out in batches over OTLP/HTTP (the
standard ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*`` variables apply).

The request's span starts when its message has been admitted (its body read and decoded)
and is current in the request's task until the answer has been sent, so the actors' spans
nest under it and a JSON log line names its trace and span. It is named
``{mcp.method.name} {target}`` (the tool or prompt); the attributes that depend on the
outcome (``error.type``, ``rpc.response.status_code``) are the metric's, set at its end.
Its parent is the trace context the client put in the request's ``params._meta``
(``traceparent``, ``tracestate``), as the conventions ask; a ``traceparent`` header (an
HTTP hop's context) becomes a link instead, since one MCP request may span several HTTP
requests and one HTTP request may carry several MCP messages.

Child spans (:mod:`engine.actors.tracing` names them): ``handler`` (the app's code, until
its result), ``store commit`` (the output gate: until what the request changed is
durable), ``{method}`` CLIENT spans for a request the server sends the client (sampling,
elicitation, roots) until its answer, ``forward`` (a cluster hop to the session's holder),
and ``task {tool}``: a task's run, in a trace of its own linked to the request that
created it (it outlives that request, and may run in another process after a restart).
"""

from __future__ import annotations

from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..protocol.jsonrpc import UNSET, Message
from . import operation_target

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = ("traceparent", "tracestate")
_NAMING_A_URI = frozenset(("resources/read", "resources/subscribe", "resources/unsubscribe"))
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}


class _Live:
    """An open span, and the token that makes it current in the task that started it."""

    __slots__ = ("span", "token")

    def __init__(self, span: Any):
        self.span = span
        self.token = otel_context.attach(set_span_in_context(span))


class Traces:
    def __init__(self, resource: Resource, exporter: Any = None):
        """``exporter``: where spans go (OTLP over HTTP unless given one, as a test may)."""
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("mcp-actors")

    def begin(self, msg: Message, headers: Mapping[str, str], session_id: str | None = None) -> _Live:
        params = msg.params if isinstance(msg.params, dict) else {}
        meta = params.get("_meta")
        carrier = {k: meta[k] for k in _CARRIED if isinstance(meta, dict) and isinstance(meta.get(k), str)}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        links = []
        if "traceparent" in headers:
            hop = get_current_span(_PROPAGATOR.extract({k: headers[k] for k in _CARRIED if k in headers}))
            if hop.get_span_context().is_valid:
                links.append(Link(hop.get_span_context()))
        attributes: dict[str, Any] = {"mcp.method.name": str(msg.method)}
        if msg.id is not None and msg.id is not UNSET:
            attributes["jsonrpc.request.id"] = str(msg.id)
        uri = params.get("uri")
        if isinstance(uri, str) and msg.method in _NAMING_A_URI:  # on spans only: too many values for a metric
            attributes["mcp.resource.uri"] = uri
        session = session_id or headers.get("mcp-session-id")
        if session:
            attributes["mcp.session.id"] = session
        target = operation_target(msg)
        name = f"{msg.method} {target}" if target else str(msg.method)
        return _Live(self.tracer.start_span(name, context=parent or otel_context.Context(), kind=SpanKind.SERVER,
                                            attributes=attributes, links=links))

    def start(self, name: str, attributes: Mapping[str, Any], kind: str, task: bool,
              parent: Mapping[str, str] | None) -> _Live | None:
        span = get_current_span()
        current = span.get_span_context()
        if parent is None and not task and not span.is_recording():
            return None  # sampled out (OTEL_TRACES_SAMPLER), or none: its children would be too
        if task:  # a trace of its own, linked to the request that started it
            links = [Link(current)] if current.is_valid else []
            return _Live(self.tracer.start_span(name, context=otel_context.Context(), kind=SpanKind.INTERNAL,
                                                attributes=attributes, links=links))
        context = None
        if parent is not None:
            context = _PROPAGATOR.extract({k: parent[k] for k in _CARRIED if k in parent})
            if not get_current_span(context).get_span_context().is_valid:
                return None
        return _Live(self.tracer.start_span(name, context=context, kind=_KINDS[kind], attributes=attributes))

    @staticmethod
    def inject(headers: dict[str, str]) -> None:
        _PROPAGATOR.inject(headers)

    @staticmethod
    def leave(handle: _Live) -> None:
        if handle.token is not None:
            otel_context.detach(handle.token)
            handle.token = None

    def end(self, handle: _Live, error: str | None, attributes: Mapping[str, Any] | None = None) -> None:
        span = handle.span
        if attributes:
            span.set_attributes(attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attribute("error.type", error)
        self.leave(handle)
        span.end()

    def shutdown(self) -> None:
        """Send what is batched (the process is stopping)."""
        self.provider.shutdown()
