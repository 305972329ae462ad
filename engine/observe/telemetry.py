"""Telemetry: what a runtime adapter holds when it is on, the metrics and (if asked) the traces.

Made by ``python -m engine serve`` when ``--metrics-port``, ``OTEL_METRICS_EXPORTER`` or
``OTEL_TRACES_EXPORTER`` asks for it; otherwise none of :mod:`engine.observe`'s SDK modules
is imported. Both share one OpenTelemetry resource (``service.name`` from
``OTEL_SERVICE_NAME``, else the app's name; ``service.version``, the app's version).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from opentelemetry.sdk.resources import Resource

from ..actors import tracing
from .metrics import Metrics


class Telemetry:
    def __init__(self, runtime: Any, prometheus: bool, service: str, version: str, traces: bool = False,
                 span_exporter: Any = None, metric_reader: Any = None, gate: Any = None):
        """``prometheus``: serve ``/metrics`` (the adapter routes it); ``traces``: spans,
        over OTLP unless ``span_exporter`` is given; ``metric_reader``: one more reader
        (those two for a test's in-memory ones); ``gate``: the authorization gate, if any."""
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service,
                                    "service.version": version})
        self.metrics = Metrics(runtime, prometheus, resource, metric_reader, gate)
        self.traces = None
        if traces:
            from .traces import Traces

            self.traces = Traces(resource, span_exporter)
        tracing.install(self.traces)

    def record(self, seconds: float, response: Any, headers: Mapping[str, str], http_version: str) -> None:
        """One answer sent (:class:`engine.actors.front.Response`): its metric, and the end
        of its span, which carries the metric's attributes."""
        attributes = self.metrics.record(seconds, response.message, headers, response.status, response.body,
                                         http_version)
        if response.trace is not None:
            tracing.end(response.trace, (attributes or {}).get("error.type"), attributes)

    def exposition(self) -> tuple[bytes, str]:
        return self.metrics.exposition()

    def close(self) -> None:
        """Stop tracing and send what is batched (the process is stopping)."""
        tracing.install(None)
        if self.traces is not None:
            self.traces.shutdown()
