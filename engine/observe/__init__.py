"""Telemetry: optional, outside the protocol core, fed by counters the runtimes keep anyway.

``metrics``: the OpenTelemetry meter, served to Prometheus on ``--metrics-port`` and sent
over OTLP when ``OTEL_METRICS_EXPORTER=otlp``. Needs ``pip install 'mcp-actors[otel]'``.
"""
