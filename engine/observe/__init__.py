"""Telemetry: optional, outside the protocol core, fed by counters the runtimes keep anyway.

``telemetry``: what a runtime adapter holds when telemetry is on, owning ``metrics`` (the
OpenTelemetry meter, served to Prometheus on ``--metrics-port`` and sent over OTLP when
``OTEL_METRICS_EXPORTER=otlp``) and ``traces`` (spans over OTLP when
``OTEL_TRACES_EXPORTER=otlp``). Both need ``pip install 'mcp-actors[otel]'``; this module
does not.
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


def operation_target(msg) -> str | None:
    """What the conventions' span name and ``gen_ai.*`` attributes name besides the method:
    the tool of a tools/call, the prompt of a prompts/get."""
    params = msg.params if isinstance(msg.params, dict) else {}
    name = params.get("name")
    return name if isinstance(name, str) and msg.method in ("tools/call", "prompts/get") else None
