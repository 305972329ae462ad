"""Telemetry: optional, outside the protocol core, fed by counters the runtimes keep anyway.

``metrics``: the OpenTelemetry meter, served to Prometheus on ``--metrics-port`` and sent
over OTLP when ``OTEL_METRICS_EXPORTER=otlp``. Needs ``pip install 'mcp-actors[otel]'``.
"""

import os


def otlp_metrics() -> bool:
    """Whether the standard variable asks for metrics over OTLP (``OTEL_METRICS_EXPORTER``
    lists ``otlp``); read here, without the SDK, so the CLI can decide whether to import it."""
    return "otlp" in os.environ.get("OTEL_METRICS_EXPORTER", "").split(",")


def otlp_traces() -> bool:
    """Whether ``OTEL_TRACES_EXPORTER`` lists ``otlp``: each MCP request then becomes a
    SERVER span, sent over OTLP (the standard ``OTEL_EXPORTER_OTLP_*`` variables say where)."""
    return "otlp" in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
