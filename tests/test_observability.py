"""Observability: metrics on ``--metrics-port``, scraped and parsed as Prometheus does (prometheus_client's
own text parser) after a known workload from a raw client and the official Python SDK; JSON logs."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from sse_client import call, headers, initialize

RAW_CALLS, SDK_CALLS = 7, 3


def scrape(base: str) -> dict[str, list]:
    r = httpx.get(base + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(r.text)}


def value(families: dict[str, list], sample: str, **labels: str) -> float:
    """The one sample named ``sample`` whose labels include ``labels``."""
    family = sample.removesuffix("_count").removesuffix("_sum").removesuffix("_bucket").removesuffix("_total")
    found = [s for s in families.get(family, []) if s.name == sample
             and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (sample, labels, families.get(family))
    return found[0].value


async def sdk_calls(url: str) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for i in range(SDK_CALLS):
                result = await session.call_tool("echo", {"text": f"sdk {i}"})
                assert result.content[0].text == f"sdk {i}"


def test_metrics_count_what_was_served_and_stay_off_the_mcp_port(start_server):
    port = free_port()
    server = start_server(None, "--metrics-port", str(port))
    base, mcp = f"http://127.0.0.1:{port}", server.url
    assert f"metrics: http://127.0.0.1:{port}/metrics" in server.output()
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, mcp)
        for i in range(RAW_CALLS):
            got = call(c, mcp, sid, i + 1, "tools/call", {"name": "echo", "arguments": {"text": str(i)}})
            assert str(i) in got[-1].data
        call(c, mcp, sid, 100, "resources/read", {"uri": "demo://about"})
        call(c, mcp, sid, 101, "prompts/get", {"name": "summarize", "arguments": {"text": "a long story"}})
        gone = c.post(mcp, headers=headers("no-such-session"), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert gone.status_code == 404
        malformed = c.post(mcp, headers=headers(sid), content=b'{"jsonrpc": "2.0", "id": 1, "method":')
        assert malformed.status_code == 400
        # Nothing of the metrics port on the MCP port, and nothing of MCP on the metrics port.
        assert c.get(mcp.removesuffix("/mcp") + "/metrics").status_code == 404
        assert c.post(base + "/mcp", headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
                      ).status_code == 404
        assert c.get(base + "/healthz").text == "ok\n" and c.get(base + "/readyz").text == "ok\n"
        assert c.post(base + "/metrics").status_code == 405
        with c.stream("GET", mcp, headers=headers(sid, accept="text/event-stream")) as listening:
            assert listening.status_code == 200
            assert value(scrape(base), "mcp_actors_streams_open") == 1  # the GET stream
    began = time.monotonic()
    asyncio.run(sdk_calls(mcp))

    families = scrape(base)
    duration = "mcp_server_operation_duration_seconds"
    echo = dict(mcp_method_name="tools/call", gen_ai_tool_name="echo", mcp_protocol_version="2025-11-25",
                gen_ai_operation_name="execute_tool", network_protocol_version="1.1")
    calls = RAW_CALLS + SDK_CALLS  # the SDK speaks 2025-11-25 too
    assert value(families, duration + "_count", **echo) == calls
    assert 0 < value(families, duration + "_sum", **echo) < calls * 5
    assert value(families, duration + "_bucket", le="+Inf", **echo) == calls
    assert value(families, duration + "_bucket", le="300", **echo) == calls  # the conventions' buckets
    assert value(families, duration + "_count", mcp_method_name="resources/read") == 1
    assert value(families, duration + "_count", mcp_method_name="prompts/get", gen_ai_prompt_name="summarize") == 1
    assert value(families, duration + "_count", mcp_method_name="initialize", mcp_protocol_version="2025-11-25") == 2
    # A refusal carries error.type: the JSON-RPC code its body names.
    assert value(families, duration + "_count", mcp_method_name="ping", error_type="-32001",
                 rpc_response_status_code="-32001") == 1
    # Refused before any message was read: counted by status.
    assert value(families, "mcp_actors_http_refused_total", http_response_status_code="400") == 1
    # The raw client's session is live; the SDK's ended with its DELETE.
    assert value(families, "mcp_actors_sessions", mcp_actors_session_state="live") == 1
    assert value(families, "mcp_actors_sessions", mcp_actors_session_state="hibernated") == 0
    assert value(families, "mcp_actors_ready") == 1
    assert value(families, "mcp_actors_streams_open") == 0  # every reply has ended
    assert value(families, "mcp_actors_sessions_expired_total") == 0
    # One session ended (the SDK's DELETE): its lifetime, from creation, was recorded.
    lived = "mcp_server_session_duration_seconds"
    assert value(families, lived + "_count", mcp_protocol_version="2025-11-25", network_transport="tcp") == 1
    assert 0 < value(families, lived + "_sum") < time.monotonic() - began
    assert value(families, lived + "_bucket", le="300") == 1
    # The SQLite store's commits, timed; none failed.
    commits = [s for s in families["mcp_actors_store_commit_duration_seconds"] if s.name.endswith("_count")]
    assert len(commits) == 1 and commits[0].value >= 2 and "error_type" not in commits[0].labels
    assert "process_cpu_seconds" in families  # prometheus_client's own process series ride along


def test_metrics_port_refused_where_the_extra_is_missing_says_what_to_install(tmp_path):
    """Without the telemetry extra, --metrics-port is a clear exit, not a traceback."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "opentelemetry"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('opentelemetry is not installed (test)')\n")
    done = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(free_port()), "--metrics-port",
                           str(free_port()), "--store", "memory"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}:{os.getcwd()}"})
    assert done.returncode != 0
    assert "pip install 'mcp-actors[otel]'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", ["--metrics-port=70000", "--metrics-port=x"])
def test_a_bad_metrics_port_is_a_clear_exit(flag):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "engine", "serve", flag], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "--metrics-port" in done.stderr and "Traceback" not in done.stderr


def test_json_logs_are_one_object_per_line_naming_the_request(start_server):
    """--log-format json: every line the server prints is a JSON object; a line logged while a
    request is served names its session, request id and method, and carries no token."""
    import json

    server = start_server(None, "--log-format", "json", "--log-level", "info")
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, server.url)
        # A response to a request the server never sent: logged (info) and ignored.
        r = c.post(server.url, headers=headers(sid, authorization="Bearer secret-token-123"),
                   json={"jsonrpc": "2.0", "id": "stray-7", "result": {}})
        assert r.status_code == 202
    deadline = time.monotonic() + 5
    while "stray-7" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    stray = [rec for rec in records if "stray-7" in rec["message"]]
    assert len(stray) == 1, records
    assert stray[0]["session_id"] == sid and stray[0]["request_id"] == "stray-7" and stray[0]["level"] == "info"
    assert stray[0]["time"].endswith("Z") and stray[0]["logger"] == "engine"
    assert "secret-token-123" not in server.output()
    # uvicorn's own lines are JSON too (its startup message); only our banner is plain text
    assert any(rec["logger"].startswith("uvicorn") for rec in records), records
    banner = [line for line in server.output().splitlines() if not line.startswith("{")]
    assert all(line.startswith(("mcp-actors serving", "HTTP+SSE", "note:")) for line in banner), banner


def dashboard_series() -> set[str]:
    """Every series the example Grafana dashboard queries (docs/grafana-dashboard.json)."""
    import json
    import re
    from pathlib import Path

    board = json.loads((Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]] + \
            [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return {name for e in exprs for name in re.findall(r"\b(mcp_[a-z_]+)\b", e)}


@pytest.mark.cluster
def test_two_processes_count_forwards_claims_and_commits_and_serve_every_dashboard_series(start_server, postgres):
    """Over PostgreSQL: a session made on A and called through B. Each request is counted once,
    where it arrived (B: forwarded), and A says what it claimed and committed. Between them the
    processes expose every series the example dashboard queries."""
    database = postgres.new_database()
    ports = [free_port(), free_port()]
    a, b = (start_server(None, "--store", database, "--metrics-port", str(p), "--lease", "2") for p in ports)
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, a.url)
        for i in range(RAW_CALLS):
            got = call(c, b.url, sid, i + 1, "tools/call", {"name": "echo", "arguments": {"text": f"b{i}"}})
            assert f"b{i}" in got[-1].data
    on_a, on_b = (scrape(f"http://127.0.0.1:{p}") for p in ports)
    duration = "mcp_server_operation_duration_seconds_count"
    assert value(on_b, duration, mcp_method_name="tools/call", gen_ai_tool_name="echo") == RAW_CALLS
    assert not [s for s in on_a[duration[:-6]] if s.labels.get("mcp_method_name") == "tools/call"]
    assert value(on_b, "mcp_actors_requests_forwarded_total") == RAW_CALLS
    assert value(on_a, "mcp_actors_requests_forwarded_total") == 0
    assert value(on_a, "mcp_actors_store_commits_total") >= 2 and value(on_a, "mcp_actors_store_fenced_total") == 0
    # Each PostgreSQL group commit is timed too.
    assert value(on_a, "mcp_actors_store_commit_duration_seconds_count") >= 2
    assert value(on_a, "mcp_actors_sessions", mcp_actors_session_state="live") == 1
    exposed = {s.name for families in (on_a, on_b) for samples in families.values() for s in samples}
    labels = {k for families in (on_a, on_b) for samples in families.values() for s in samples for k in s.labels}
    missing = {name for name in dashboard_series() - labels
               if not any(e == name or e.startswith(name + "_") for e in exposed)}
    assert not missing, missing


class OtlpReceiver:
    """A stand-in OTLP/HTTP collector: keeps every span POSTed to /v1/traces."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        spans = self.spans = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    spans.extend(s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> list:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.spans)


def test_each_request_is_a_server_span_whose_parent_the_client_named_in_meta(start_server, monkeypatch):
    """OTEL_TRACES_EXPORTER=otlp: a SERVER span per request, sent over OTLP, named and labelled
    per the MCP conventions, child of the traceparent in params._meta, linked to the one in
    the HTTP header."""
    receiver = OtlpReceiver()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    server = start_server(None)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    hop_trace, hop_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, server.url)
        r = c.post(server.url, headers=headers(sid, traceparent=f"00-{hop_trace}-{hop_span}-01"),
                   json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                         "params": {"name": "echo", "arguments": {"text": "traced"},
                                    "_meta": {"traceparent": f"00-{trace_id}-{parent_id}-01"}}})
        assert r.status_code == 200 and "traced" in r.text
        call(c, server.url, sid, 8, "tools/call", {"name": "no-such-tool", "arguments": {}})
        call(c, server.url, sid, 9, "resources/read", {"uri": "demo://about"})
        # A 2026-07-28 request: no session, its version in _meta, and its trace context there too.
        from modern_client import call as modern_call

        modern_call(c, server.url, 10, "tools/call", {"name": "echo", "arguments": {"text": "now"}},
                    meta={"traceparent": f"00-{hop_trace}-{parent_id}-01"}, name="echo")
    spans = receiver.wait(6)  # initialize, notifications/initialized, three requests and the modern one
    by_name = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    echo = by_name["tools/call echo"][0]
    attributes = {a.key: a.value.string_value for a in echo.attributes}
    assert echo.kind == echo.SPAN_KIND_SERVER
    assert echo.trace_id.hex() == trace_id and echo.parent_span_id.hex() == parent_id
    assert [(link.trace_id.hex(), link.span_id.hex()) for link in echo.links] == [(hop_trace, hop_span)]
    assert attributes["mcp.method.name"] == "tools/call" and attributes["gen_ai.tool.name"] == "echo"
    assert attributes["gen_ai.operation.name"] == "execute_tool" and attributes["jsonrpc.request.id"] == "7"
    assert attributes["mcp.session.id"] == sid and attributes["mcp.protocol.version"] == "2025-11-25"
    assert 0 < echo.end_time_unix_nano - echo.start_time_unix_nano < 5e9
    assert echo.status.code != echo.status.STATUS_CODE_ERROR
    # A request without trace context starts a trace of its own; an error marks the span.
    missing = by_name["tools/call no-such-tool"][0]
    assert missing.trace_id.hex() != trace_id and not missing.parent_span_id
    assert missing.status.code == missing.status.STATUS_CODE_ERROR
    assert "initialize" in by_name
    read = {a.key: a.value.string_value for a in by_name["resources/read"][0].attributes}
    assert read["mcp.resource.uri"] == "demo://about"
    modern = [s for s in by_name["tools/call echo"] if s.trace_id.hex() == hop_trace]
    assert len(modern) == 1 and modern[0].parent_span_id.hex() == parent_id
    modern_attributes = {a.key: a.value.string_value for a in modern[0].attributes}
    assert modern_attributes["mcp.protocol.version"] == "2026-07-28" and "mcp.session.id" not in modern_attributes
