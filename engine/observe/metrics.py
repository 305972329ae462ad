"""Metrics: the OpenTelemetry SDK's meter, read by Prometheus and, if asked, sent over OTLP.

Optional (``pip install 'mcp-actors[otel]'``): with no ``--metrics-port`` and no
``OTEL_METRICS_EXPORTER`` this module is never imported, and the request path pays one
``is None`` test. With it, a request pays one histogram record; everything else is read at
collection time from counters the runtime keeps anyway (observable instruments), so an
idle scrape costs the hot path nothing.

Names follow OpenTelemetry's semantic conventions for MCP where they define one
(``mcp.server.operation.duration``, seconds, with ``mcp.method.name``, ``gen_ai.tool.name``,
``mcp.protocol.version``, ``error.type``); the engine's own are under ``mcp_actors.`` and
documented in docs/observability.md. Prometheus sees them through the SDK's
Prometheus reader (dots become underscores, units and ``_total`` are appended).
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from ..protocol import tasks
from ..protocol.eventlog import TOTALS
from ..protocol.jsonrpc import Message
from ..protocol.session import SessionState
from . import operation_target, otlp_metrics

#: The conventions' recommended boundaries for MCP durations, in seconds.
DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
OPERATION_DURATION = "mcp.server.operation.duration"
SESSION_DURATION = "mcp.server.session.duration"
COMMIT_DURATION = "mcp_actors.store.commit.duration"
COMMIT_SIZE = "mcp_actors.store.commit.size"
#: Writes per commit: one request writes a few; a group under load carries hundreds.
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
#: A commit takes a fraction of a millisecond to tens of them; the MCP buckets start at 10 ms.
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
_TASK_STATUSES = (tasks.WORKING, tasks.INPUT_REQUIRED, tasks.COMPLETED, tasks.FAILED, tasks.CANCELLED)
_TRANSPORT = {"network.transport": "tcp", "network.protocol.name": "http"}

_ERROR_CODE = re.compile(rb'"error":\{"code":(-?\d+)')


class Metrics:
    """One process's instruments. ``runtime`` is read at collection time (duck-typed: the
    local runtime, or the cluster's, which has more to say)."""

    def __init__(self, runtime: Any, prometheus: bool, resource: Resource, reader: Any = None, gate: Any = None):
        """``reader``: one more metric reader (a test's in-memory one); ``gate``: the
        authorization gate, whose refusals are counted (None: no authorization)."""
        readers: list[Any] = [reader] if reader is not None else []
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            # It registers with prometheus_client's default registry, which also carries
            # that library's process_* and python_* series (CPU, memory, file descriptors).
            readers.append(PrometheusMetricReader())
        if otlp_metrics():
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        views = [View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS))
                 for name in (OPERATION_DURATION, SESSION_DURATION)]
        views.append(View(instrument_name=COMMIT_DURATION, aggregation=ExplicitBucketHistogramAggregation(COMMIT_BUCKETS)))
        views.append(View(instrument_name=COMMIT_SIZE, aggregation=ExplicitBucketHistogramAggregation(SIZE_BUCKETS)))
        self.provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
        meter = self.provider.get_meter("mcp-actors")
        self.operation = meter.create_histogram(
            OPERATION_DURATION, unit="s",
            description="MCP request duration as observed on the receiver from the time it was received until "
                        "the result or ack is sent")
        self.session = meter.create_histogram(
            SESSION_DURATION, unit="s", description="The duration of the MCP session as observed on the MCP server")
        runtime.session_ended = self.session_ended
        self.commit = meter.create_histogram(
            COMMIT_DURATION, unit="s",
            description="commits the store sent (a group of writes, of one or many sessions and tasks), and how "
                        "long each took; error.type names a failed one's error")
        self.commit_size = meter.create_histogram(
            COMMIT_SIZE, unit="{write}",
            description="writes per commit the store sent (keys put or deleted, alarms set, of one or many "
                        "sessions and tasks): how much each group commit carries")
        self.store_errors = meter.create_counter(
            "mcp_actors.store.errors", unit="{group}",
            description="groups of writes the store could not keep, by error.type (the failed statement's or "
                        "commit's error): their requests were answered 503 and their sessions reloaded")
        runtime.backend.on_commit = self.committed
        self.refused = meter.create_counter(
            "mcp_actors.http.refused", unit="{request}",
            description="requests refused before a JSON-RPC message was read (401/403 authorization, 413 too "
                        "large, 415 or 406 media types, 400 malformed, 404 unknown session on GET or DELETE, 429...)")
        for name, unit, description, read in _observed(runtime):
            meter.create_observable_gauge(name, callbacks=[_callback(read)], unit=unit, description=description)
        for name, unit, description, read in _counted(runtime, gate):
            meter.create_observable_counter(name, callbacks=[_callback(read)], unit=unit, description=description)

    def record(self, seconds: float, msg: Message | None, headers: Mapping[str, str], status: int,
               body: bytes, http_version: str = "1.1") -> dict[str, str] | None:
        """One request answered. A POSTed MCP message: its duration and what it was (a
        client's response to a server request has no method, and is not an operation);
        returns the attributes it was recorded with. A request refused before any message
        was read (no token, too large, not JSON): its status, counted."""
        if msg is None:
            if status >= 400:
                self.refused.add(1, {"http.response.status_code": status})
            return None
        method = msg.method
        if method is None:
            return None
        attributes: dict[str, str] = {"mcp.method.name": method, **_TRANSPORT, "network.protocol.version": http_version}
        params = msg.params if isinstance(msg.params, dict) else {}
        target = operation_target(msg)
        if method == "tools/call":
            attributes["gen_ai.operation.name"] = "execute_tool"
            if target:
                attributes["gen_ai.tool.name"] = target
        elif target:
            attributes["gen_ai.prompt.name"] = target
        # initialize names its version in its params; every later request in its header
        version = params.get("protocolVersion") if method == "initialize" else headers.get("mcp-protocol-version")
        if isinstance(version, str) and version:
            attributes["mcp.protocol.version"] = version
        code = _error_code(body)
        if code is not None:  # the conventions name the JSON-RPC code twice
            attributes["error.type"] = attributes["rpc.response.status_code"] = code
        elif status >= 400:
            attributes["error.type"] = str(status)
        elif b'"isError":true' in body:
            attributes["error.type"] = "tool_error"
        self.operation.record(seconds, attributes)
        return attributes

    def observe_server(self, open_connections: Callable[[], int], protocol: Any) -> None:
        """The HTTP server's connections (the adapter knows its server): how many are open,
        and, with the engine's protocol (``engine.local.protocols``), those refused by each
        limit below the application and those shed at the cap."""
        meter = self.provider.get_meter("mcp-actors")
        meter.create_observable_gauge(
            "mcp_actors.connections.open", callbacks=[_callback(lambda: [(open_connections(), {})])],
            unit="{connection}", description="HTTP connections open on this process (the MCP and metrics ports)")
        refused = getattr(protocol, "refused", None)
        if refused is None:
            return
        meter.create_observable_counter(
            "mcp_actors.connections.refused", unit="{connection}",
            callbacks=[_callback(lambda: [(n, {"mcp_actors.limit": why}) for why, n in list(refused.items())])],
            description="connections answered and closed below the application, by mcp_actors.limit: busy (503 at "
                        "the cap, none to shed), head_too_large (431), head_timeout (408), body_timeout (408), "
                        "malformed (400)")
        meter.create_observable_counter(
            "mcp_actors.connections.shed", unit="{connection}", callbacks=[_callback(lambda: [(protocol.shed[0], {})])],
            description="connections closed at the cap to admit a new one (an incomplete head's first, then an idle "
                        "one's)")

    def session_ended(self, state: SessionState) -> None:
        """A session ended here (DELETE or expiry): how long it lived, from its creation
        (which may have been in another process, or before a restart)."""
        if state.opened:
            self.session.record(max(0.0, time.time() - state.opened),
                                {"mcp.protocol.version": state.version, **_TRANSPORT})

    def committed(self, seconds: float | None, error: str | None, writes: int = 0) -> None:
        """A group ended: its commit's duration (none if it failed before one was sent) and
        size, and a failure counted by its type either way."""
        if seconds is not None:
            attributes = {"error.type": error} if error else {}
            self.commit.record(seconds, attributes)
            self.commit_size.record(writes, attributes)
        if error:
            self.store_errors.add(1, {"error.type": error})

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every series, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def _error_code(body: bytes) -> str | None:
    """The JSON-RPC error code of an error reply. Without one, the conventions' ``error.type``
    is ``tool_error`` for a tool's error result, else the HTTP status of a refusal. A reply
    streamed as SSE is read only as far as its status (its messages are not parsed)."""
    match = _ERROR_CODE.search(body[:256])
    return None if match is None else match.group(1).decode()


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
        by_status = dict.fromkeys(_TASK_STATUSES, 0)  # every status, 0 included: a series per status
        for actor in list(runtime.task_actors.values()):
            by_status[actor.record.status] = by_status.get(actor.record.status, 0) + 1
        return [(count, {"mcp_actors.task.status": status}) for status, count in by_status.items()]

    def connections() -> list:
        # read at collection time, walking the live sessions: nothing on the request path
        return [conn for actor in list(runtime.actors.values()) for conn in list(actor.connections.values())]

    def streams() -> list[tuple[float, dict]]:
        return [(len(connections()), {})]

    def buffered() -> list[tuple[float, dict]]:
        return [(sum(conn.queued for conn in connections()), {})]

    def ready() -> list[tuple[float, dict]]:
        return [(0 if runtime.unready() else 1, {})]

    return [
        ("mcp_actors.sessions", "{session}",
         "sessions that exist: live (an actor in this process's memory) or hibernated (only in the store; in a "
         "cluster, counted by every process)", sessions),
        ("mcp_actors.streams.open", "{stream}",
         "SSE streams open on this process's sessions (POST replies, GET streams, resumed streams)", streams),
        ("mcp_actors.streams.buffered", "By",
         "bytes queued on those streams for clients that have not read them yet (each stream is cut off past "
         "--max-buffer)", buffered),
        ("mcp_actors.tasks.active", "{task}", "tasks whose actor is in this process's memory, by mcp_actors.task.status",
         tasks),
        ("mcp_actors.ready", "1", "1 while /readyz answers 200, else 0", ready),
    ]


def _counted(runtime: Any, gate: Any) -> list[tuple[str, str, str, Callable[[], list[tuple[float, dict]]]]]:
    """Counters since the process started, as the runtime keeps them."""

    def attr(obj: Any, name: str) -> Callable[[], list[tuple[float, dict]]]:
        return lambda: [(getattr(obj, name), {})]

    out = [
        ("mcp_actors.sessions.expired", "{session}", "sessions deleted by their idle TTL", attr(runtime, "expired")),
        ("mcp_actors.events.appended", "{event}", "SSE events written to sessions' event logs (kept for resumption)",
         attr(TOTALS, "appended")),
        ("mcp_actors.events.replayed", "{event}", "stored events sent again to a client resuming with Last-Event-ID",
         attr(TOTALS, "replayed")),
        ("mcp_actors.streams.resumed", "{stream}", "streams resumed with Last-Event-ID", attr(TOTALS, "resumed")),
        ("mcp_actors.alarms.fired", "{alarm}", "storage alarms run (session expiry, task heartbeats and TTLs)",
         attr(runtime, "alarms_fired")),
        ("mcp_actors.alarms.retried", "{alarm}", "alarms that failed and were set again (with backoff)",
         attr(runtime, "alarms_retried")),
    ]
    if gate is not None:
        out.append(("mcp_actors.auth.refused", "{request}",
                    "requests the authorization gate refused, by error.type: missing_token (401 with the challenge), "
                    "invalid_token (401), insufficient_scope (403), invalid_request (400)",
                    lambda: [(count, {"error.type": reason}) for reason, count in list(gate.refused.items())]))
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
