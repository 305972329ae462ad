"""Metrics: the OpenTelemetry SDK's meter, read by Prometheus and, if asked, sent over OTLP.

Optional (``pip install 'mcp-actors[otel]'``): with no ``--metrics-port`` and no
``OTEL_METRICS_EXPORTER`` this module is never imported, and the request path pays one
``is None`` test. With it, a request pays one histogram record; everything else is read at
collection time from counters the runtime keeps anyway (observable instruments), so an
idle scrape costs the hot path nothing.

Names follow OpenTelemetry's semantic conventions for MCP where they define one
(``mcp.server.operation.duration``, seconds, with ``mcp.method.name``, ``gen_ai.tool.name``,
``mcp.protocol.version``, ``error.type``); the engine's own are under ``mcp_actors.`` and
documented in the README's "Observability". Prometheus sees them through the SDK's
Prometheus reader (dots become underscores, units and ``_total`` are appended).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from ..protocol.jsonrpc import Message
from . import otlp_metrics

#: The conventions' recommended boundaries for MCP durations, in seconds.
DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
OPERATION_DURATION = "mcp.server.operation.duration"

_ERROR_CODE = re.compile(rb'"error":\{"code":(-?\d+)')


class Metrics:
    """One process's instruments. ``runtime`` is read at collection time (duck-typed: the
    local runtime, or the cluster's, which has more to say)."""

    def __init__(self, runtime: Any, prometheus: bool, service: str, version: str):
        readers: list[Any] = []
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            # It registers with prometheus_client's default registry, which also carries
            # that library's process_* and python_* series (CPU, memory, file descriptors).
            readers.append(PrometheusMetricReader())
        if otlp_metrics():
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service,
                                    "service.version": version})
        views = [View(instrument_name=OPERATION_DURATION,
                      aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS))]
        self.provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
        meter = self.provider.get_meter("mcp-actors")
        self.operation = meter.create_histogram(
            OPERATION_DURATION, unit="s",
            description="MCP request duration as observed on the receiver from the time it was received until "
                        "the result or ack is sent")
        for name, unit, description, read in _observed(runtime):
            meter.create_observable_gauge(name, callbacks=[_callback(read)], unit=unit, description=description)
        for name, unit, description, read in _counted(runtime):
            meter.create_observable_counter(name, callbacks=[_callback(read)], unit=unit, description=description)

    def record(self, seconds: float, msg: Message, headers: Mapping[str, str], status: int, body: bytes) -> None:
        """One MCP message POSTed, answered: its duration and what it was (a client's
        response to a server request has no method, and is not an operation)."""
        method = msg.method
        if method is None:
            return
        attributes: dict[str, str] = {"mcp.method.name": method, "network.transport": "tcp",
                                      "network.protocol.name": "http"}
        params = msg.params if isinstance(msg.params, dict) else {}
        tool = params.get("name") if method == "tools/call" else None
        if isinstance(tool, str):
            attributes["gen_ai.tool.name"] = tool
        # initialize names its version in its params; every later request in its header
        version = params.get("protocolVersion") if method == "initialize" else headers.get("mcp-protocol-version")
        if isinstance(version, str) and version:
            attributes["mcp.protocol.version"] = version
        error = _error_type(status, body)
        if error is not None:
            attributes["error.type"] = error
        self.operation.record(seconds, attributes)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every series, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def _error_type(status: int, body: bytes) -> str | None:
    """The conventions' ``error.type``: the JSON-RPC error code of an error reply, else
    ``tool_error`` for a tool's error result, else the HTTP status of a refusal. A reply
    streamed as SSE is read only as far as its status (its messages are not parsed)."""
    head = body[:256]
    match = _ERROR_CODE.search(head)
    if match is not None:
        return match.group(1).decode()
    if status >= 400:
        return str(status)
    if b'"isError":true' in body:
        return "tool_error"
    return None


def _callback(read: Callable[[], Iterable[tuple[float, dict]]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    return observe


def _observed(runtime: Any) -> list[tuple[str, str, str, Callable[[], list[tuple[float, dict]]]]]:
    """Gauges: what is there now."""

    def sessions() -> list[tuple[float, dict]]:
        live = len(runtime.actors)
        return [(live, {"mcp_actors.session.state": "live"}),
                (max(0, runtime.sessions - live), {"mcp_actors.session.state": "hibernated"})]

    def tasks() -> list[tuple[float, dict]]:
        return [(len(runtime.task_actors), {})]

    def ready() -> list[tuple[float, dict]]:
        return [(0 if runtime.unready() else 1, {})]

    return [
        ("mcp_actors.sessions", "{session}",
         "sessions that exist: live (an actor in this process's memory) or hibernated (only in the store; in a "
         "cluster, counted by every process)", sessions),
        ("mcp_actors.tasks.active", "{task}", "tasks whose actor is in this process's memory", tasks),
        ("mcp_actors.ready", "1", "1 while /readyz answers 200, else 0", ready),
    ]


def _counted(runtime: Any) -> list[tuple[str, str, str, Callable[[], list[tuple[float, dict]]]]]:
    """Counters since the process started, as the runtime keeps them."""

    def attr(obj: Any, name: str) -> Callable[[], list[tuple[float, dict]]]:
        return lambda: [(getattr(obj, name), {})]

    out = [("mcp_actors.sessions.expired", "{session}", "sessions deleted by their idle TTL",
            attr(runtime, "expired"))]
    backend = runtime.backend
    if hasattr(runtime, "relayed"):  # a cluster
        out += [
            ("mcp_actors.requests.forwarded", "{request}", "requests relayed to the process holding their session",
             attr(runtime, "relayed")),
            ("mcp_actors.actors.claimed", "{actor}",
             "actors this process took from the database (woken, or taken over from a dead process)",
             attr(runtime, "claims")),
            ("mcp_actors.store.fenced", "{write}",
             "commits refused because another process holds the actor now (this one drops it)",
             attr(backend, "fenced")),
            ("mcp_actors.store.commits", "{commit}", "group commits sent to the database", attr(backend, "groups")),
        ]
    return out
