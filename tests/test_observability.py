"""Observability: metrics on ``--metrics-port``, scraped and parsed as Prometheus does (prometheus_client's
own text parser) after a known workload from a raw client and the official Python SDK; JSON logs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from engine import App, Context
from sse_client import call, headers, initialize, resume

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
        # Refused below the application: a request line that is not HTTP, and a head too large.
        import socket

        for raw in (b"NOT HTTP AT ALL\r\n\r\n", b"GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", int(mcp.split(":")[2].split("/")[0])), timeout=10) as s:
                s.sendall(raw)
                assert s.recv(100).startswith((b"HTTP/1.1 400", b"HTTP/1.1 431"))
        early = scrape(base)
        assert value(early, "mcp_actors_connections_refused_total", mcp_actors_limit="malformed") == 1
        assert value(early, "mcp_actors_connections_refused_total", mcp_actors_limit="head_too_large") == 1
        assert value(early, "mcp_actors_connections_refused_total", mcp_actors_limit="busy") == 0
        assert value(early, "mcp_actors_connections_shed_total") == 0
        assert value(early, "mcp_actors_connections_open") >= 2  # this client's, and the scrape's
        with c.stream("GET", mcp, headers=headers(sid, accept="text/event-stream")) as listening:
            assert listening.status_code == 200
            assert value(scrape(base), "mcp_actors_streams_open") == 1  # the GET stream
        replayed = resume(c, mcp, sid, f"{got[0].id.split(':')[0]}:0")  # the last call's stream, again
        assert replayed[-1].message["result"]["content"][0]["text"] == str(RAW_CALLS - 1)
        from modern_client import call as modern_call
        from test_tasks import TASKS

        _, task, _ = modern_call(c, mcp, "t", "tools/call", {"name": "long_task", "arguments": {
            "steps": 100, "interval_s": 0.1}}, TASKS)
        assert task["result"]["status"] == "working"
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
    assert value(families, "mcp_actors_streams_buffered_bytes") == 0  # nothing waits for a slow reader
    # Every SSE event was appended to a log (each call's response at least), and one resumption
    # replayed what its stream held after the id it named.
    assert value(families, "mcp_actors_events_appended_total") >= RAW_CALLS + 2
    assert value(families, "mcp_actors_streams_resumed_total") == 1
    assert value(families, "mcp_actors_events_replayed_total") == len([e for e in replayed if e.message])
    # The task runs on: one working; a series for every status.
    assert value(families, "mcp_actors_tasks_active", mcp_actors_task_status="working") == 1
    for status in ("input_required", "completed", "failed", "cancelled"):
        assert value(families, "mcp_actors_tasks_active", mcp_actors_task_status=status) == 0
    assert value(families, "mcp_actors_alarms_fired_total") >= 0 and value(families, "mcp_actors_alarms_retried_total") == 0
    # One session ended (the SDK's DELETE): its lifetime, from creation, was recorded.
    lived = "mcp_server_session_duration_seconds"
    assert value(families, lived + "_count", mcp_protocol_version="2025-11-25", network_transport="tcp") == 1
    assert 0 < value(families, lived + "_sum") < time.monotonic() - began
    assert value(families, lived + "_bucket", le="300") == 1
    # The SQLite store's commits, timed; none failed.
    commits = [s for s in families["mcp_actors_store_commit_duration_seconds"] if s.name.endswith("_count")]
    assert len(commits) == 1 and commits[0].value >= 2 and "error_type" not in commits[0].labels
    # ... and their sizes: every commit carried at least one write, and together at least the
    # events of the calls (each call's response is an event written to its stream's log).
    assert value(families, "mcp_actors_store_commit_size_count") == commits[0].value
    assert value(families, "mcp_actors_store_commit_size_sum") >= RAW_CALLS + commits[0].value - 1
    assert "process_cpu_seconds" in families  # prometheus_client's own process series ride along


def test_authorization_refusals_are_counted_by_reason(start_server):
    """With --auth-issuer: no token, a token that fails verification, and one without the
    scope the server needs are each counted under their RFC 6750 reason."""
    from auth_server import AuthServer
    from test_auth import SCOPE, bearer

    issuer = AuthServer()
    try:
        port = free_port()
        server = start_server("tests.auth_app:app", "--auth-issuer", issuer.issuer, "--auth-scope", SCOPE,
                              "--metrics-port", str(port))
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        with httpx.Client(timeout=15) as c:
            assert c.post(server.url, headers=headers(None), json=ping).status_code == 401
            assert c.get(server.url, headers=headers(None)).status_code == 401
            assert c.post(server.url, headers={**headers(None), **bearer("not.a.jwt")}, json=ping).status_code == 401
            unscoped = issuer.token(server.url, scope="")
            assert c.post(server.url, headers={**headers(None), **bearer(unscoped)}, json=ping).status_code == 403
        families = scrape(f"http://127.0.0.1:{port}")
        refused = "mcp_actors_auth_refused_total"
        assert value(families, refused, error_type="missing_token") == 2
        assert value(families, refused, error_type="invalid_token") == 1
        assert value(families, refused, error_type="insufficient_scope") == 1
    finally:
        issuer.close()


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
    assert value(on_a, "mcp_actors_store_commit_size_sum") >= RAW_CALLS  # each call's event, at least
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

    def wait(self, count: int, timeout: float = 20, names: tuple[str, ...] = ()) -> list:
        """The spans received once there are ``count`` of them and every one of ``names`` is
        among them (as often as it is named) (the actors' child spans count too, so a count alone can be reached
        before the request spans a test reads), or after ``timeout``."""
        wanted = Counter(names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
                len(self.spans) < count or wanted - Counter(s.name for s in list(self.spans))):
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
    # initialize, notifications/initialized, three requests and the modern one
    spans = receiver.wait(6, names=("initialize", "notifications/initialized", "tools/call echo",
                                    "tools/call no-such-tool", "resources/read", "tools/call echo"))
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


# -- every attribute, read back with the SDK's in-memory span exporter and metric reader -------------

def _traced_app():
    """A small app with a tool of each kind the conventions tell apart."""
    app = App("traced", "1.0")

    @app.tool()
    def echo(text: str) -> str:
        return text

    @app.tool()
    def fails() -> str:
        raise ValueError("no luck today")

    @app.tool(task="optional")
    async def slow(seconds: float = 0.05) -> str:
        await asyncio.sleep(seconds)
        return "slow is done"

    @app.tool()
    async def ask(ctx: Context, question: str) -> str:
        return (await ctx.sample(question, max_tokens=20)).text

    @app.resource("traced://about", mime_type="text/plain")
    def about() -> str:
        return "about this server"

    return app


class InProcessServer:
    """The engine's ASGI app under uvicorn in a thread of this process (so the test can hold
    the SDK's in-memory exporter and reader), on 127.0.0.1 and a free port: real HTTP."""

    def __init__(self, tmp_path):
        import threading

        import uvicorn
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from engine.actors.settings import Settings
        from engine.actors.sqlite_store import SqliteBackend
        from engine.local.asgi import McpAsgi
        from engine.local.runtime import LocalRuntime
        from engine.observe.telemetry import Telemetry

        self.spans, self.reader = InMemorySpanExporter(), InMemoryMetricReader()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.server: uvicorn.Server | None = None

        def serve() -> None:  # the store is made in the thread that uses it
            settings = Settings()
            runtime = LocalRuntime(_traced_app(), settings.http, SqliteBackend(tmp_path / "state.db"),
                                   settings.lifetimes)
            asgi = McpAsgi(runtime, settings)
            self.telemetry = asgi.telemetry = Telemetry(runtime, False, "traced", "1.0", traces=True,
                                                        span_exporter=self.spans, metric_reader=self.reader)
            self.server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
            self.server.run()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while self.server is None or not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)

    def finished_spans(self) -> list:
        self.telemetry.traces.provider.force_flush()
        return list(self.spans.get_finished_spans())

    def operation_points(self) -> list:
        data = self.reader.get_metrics_data()
        return [point for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
                if metric.name == "mcp.server.operation.duration" for point in metric.data.data_points]

    def stop(self) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(15)
        self.telemetry.close()


def test_spans_and_metrics_carry_every_conventional_attribute(tmp_path):
    """Per the MCP conventions, read back from the SDK's in-memory exporter and reader: a
    tools/call joining the trace in its _meta, with its handler and commit inside it; a tool's
    error result (tool_error); a JSON-RPC error; a resources/read; a request to the client
    (sampling) as a CLIENT span; a 2026-07-28 request; a task, its run linked to the request
    that made it; and a JSON log line naming the span it was written in."""
    import logging

    from engine.observe.logs import JsonFormatter
    from modern_client import call as modern_call
    from test_tasks import TASKS, wait_for

    server = InProcessServer(tmp_path)
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(JsonFormatter().format(record))  # type: ignore[method-assign]
    engine_log = logging.getLogger("engine")
    engine_log.addHandler(handler)
    old_level = engine_log.level
    engine_log.setLevel(logging.INFO)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        with httpx.Client(timeout=15) as c:
            sid = initialize(c, server.url)
            evs = call(c, server.url, sid, 1, "tools/call", {"name": "echo", "arguments": {"text": "hi"},
                                                             "_meta": {"traceparent": f"00-{trace_id}-{parent_id}-01"}})
            assert evs[-1].message["result"]["content"][0]["text"] == "hi"
            evs = call(c, server.url, sid, 2, "tools/call", {"name": "fails", "arguments": {}})
            assert evs[-1].message["result"]["isError"] is True
            evs = call(c, server.url, sid, 3, "tools/call", {"name": "no-such-tool", "arguments": {}})
            assert evs[-1].message["error"]["code"] == -32602
            evs = call(c, server.url, sid, 4, "resources/read", {"uri": "traced://about"})
            assert evs[-1].message["result"]["contents"][0]["text"] == "about this server"
            r, msg, _ = modern_call(c, server.url, 5, "tools/call", {"name": "slow", "arguments": {}}, TASKS)
            task_id = msg["result"]["taskId"]
            assert wait_for(c, server.url, task_id, {"completed"})["status"] == "completed"
            r, msg, _ = modern_call(c, server.url, 6, "tools/call", {"name": "echo", "arguments": {"text": "now"}},
                                    meta={"traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert msg["result"]["content"][0]["text"] == "now"
            # The HTTP+SSE transport (2024-11-05): POSTs to /messages, answers on the GET stream.
            from sse_client import events as sse_events
            from test_legacy_sse import open_legacy, post

            ctx, stream, messages = open_legacy(c, server.url.replace("/mcp", "/sse"))
            try:
                legacy_sid = messages.rsplit("=", 1)[1]
                assert post(c, messages, {"jsonrpc": "2.0", "id": "l1", "method": "initialize", "params": {
                    "protocolVersion": "2024-11-05", "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"}}}).status_code == 202
                assert post(c, messages, {"jsonrpc": "2.0", "id": "l2", "method": "tools/call",
                                          "params": {"name": "echo", "arguments": {"text": "legacy"}}}).status_code == 202
                got = sse_events(stream)
                while (m := next(got).message) is None or m.get("id") != "l2":
                    pass
                assert m["result"]["content"][0]["text"] == "legacy"
            finally:
                ctx.__exit__(None, None, None)
        asyncio.run(_sampled(server.url))
    finally:
        engine_log.removeHandler(handler)
        engine_log.setLevel(old_level)
        server.stop()

    spans = server.finished_spans()
    servers = [s for s in spans if s.kind.name == "SERVER"]

    def one(name: str, request_id: str | None = None, kind: str = "SERVER"):
        found = [s for s in spans if s.name == name and s.kind.name == kind
                 and (request_id is None or s.attributes.get("jsonrpc.request.id") == request_id)]
        assert len(found) == 1, (name, request_id, [(s.name, dict(s.attributes)) for s in spans])
        return found[0]

    def children(parent) -> dict:
        return {s.name: s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id}

    echo = one("tools/call echo", "1")
    assert format(echo.context.trace_id, "032x") == trace_id and format(echo.parent.span_id, "016x") == parent_id
    assert dict(echo.attributes) == {
        "mcp.method.name": "tools/call", "jsonrpc.request.id": "1", "mcp.session.id": sid,
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "echo", "mcp.protocol.version": "2025-11-25",
        "network.transport": "tcp", "network.protocol.name": "http", "network.protocol.version": "1.1"}
    assert echo.status.status_code.name == "UNSET"
    inside = children(echo)
    assert {"handler", "store commit"} <= set(inside), inside
    for child in inside.values():
        assert echo.start_time <= child.start_time <= child.end_time <= echo.end_time

    failed = one("tools/call fails")
    assert failed.attributes["error.type"] == "tool_error" and failed.status.status_code.name == "ERROR"
    assert "rpc.response.status_code" not in failed.attributes
    # The tool's exception is logged inside its handler's span, and the JSON line says which.
    logged = [json.loads(line) for line in lines if "no luck today" in line]
    assert logged and logged[0]["trace_id"] == format(failed.context.trace_id, "032x")
    assert logged[0]["span_id"] == format(children(failed)["handler"].context.span_id, "016x")
    assert logged[0]["session_id"] == sid and logged[0]["method"] == "tools/call" and logged[0]["request_id"] == 2

    unknown = one("tools/call no-such-tool")
    assert unknown.attributes["error.type"] == unknown.attributes["rpc.response.status_code"] == "-32602"
    assert unknown.status.status_code.name == "ERROR"

    read = one("resources/read")
    assert read.attributes["mcp.resource.uri"] == "traced://about" and "error.type" not in read.attributes

    modern = one("tools/call echo", "6")
    assert modern.attributes["mcp.protocol.version"] == "2026-07-28" and "mcp.session.id" not in modern.attributes
    assert format(modern.context.trace_id, "032x") == trace_id and "handler" in children(modern)

    legacy = one("tools/call echo", "l2")
    assert legacy.attributes["mcp.session.id"] == legacy_sid and legacy.attributes["gen_ai.tool.name"] == "echo"
    assert "handler" in children(legacy) and legacy.status.status_code.name == "UNSET"

    created = one("tools/call slow", "5")
    run = one("task slow", kind="INTERNAL")
    assert run.context.trace_id != created.context.trace_id and run.parent is None  # it outlives the request
    assert [link.context.span_id for link in run.links] == [created.context.span_id]
    assert run.attributes["mcp_actors.task.id"] == task_id and run.attributes["mcp_actors.task.status"] == "completed"
    assert run.attributes["gen_ai.tool.name"] == "slow" and run.status.status_code.name == "UNSET"

    asked = [s for s in servers if s.name == "tools/call ask"]
    assert len(asked) == 1
    sampling = children(children(asked[0])["handler"])["sampling/createMessage"]
    assert sampling.kind.name == "CLIENT" and sampling.attributes["mcp.method.name"] == "sampling/createMessage"
    assert asked[0].start_time < sampling.start_time < sampling.end_time <= asked[0].end_time

    # The metric carries the same attributes as each span (less the span-only ones).
    points = server.operation_points()
    by_tool = {(p.attributes.get("gen_ai.tool.name"), p.attributes.get("mcp.protocol.version")): p for p in points}
    assert by_tool[("fails", "2025-11-25")].attributes["error.type"] == "tool_error"
    assert by_tool[("no-such-tool", "2025-11-25")].attributes["rpc.response.status_code"] == "-32602"
    assert by_tool[("echo", "2026-07-28")].count == 1 and by_tool[("echo", "2025-11-25")].count == 1
    assert all("mcp.session.id" not in p.attributes and "jsonrpc.request.id" not in p.attributes for p in points)


async def _sampled(url: str) -> None:
    """The official SDK's client calls a tool that asks it for a sampling: the wait for its
    answer is a CLIENT span."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import CreateMessageResult, TextContent

    async def sample(context, params):
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="forty-two"), model="m")

    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, sampling_callback=sample) as session:
            await session.initialize()
            result = await session.call_tool("ask", {"question": "what is it?"})
            assert result.content[0].text == "forty-two"


@pytest.mark.cluster
def test_a_forward_is_a_client_span_and_the_holder_continues_the_trace(start_server, postgres, monkeypatch):
    """A session held by A, called through B: B's span of the request has a ``forward`` CLIENT
    span inside it, and A's work (``forwarded``, with its handler and commit) is in the same
    trace, under that forward: the trace context crosses the hop in the signed call."""
    receiver = OtlpReceiver()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    database = postgres.new_database()
    a, b = (start_server(None, "--store", database, "--lease", "2") for _ in range(2))
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, a.url)
        got = call(c, b.url, sid, 1, "tools/call", {"name": "echo", "arguments": {"text": "hop"}})
        assert "hop" in got[-1].data
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        spans = receiver.wait(0)
        names = {s.name for s in spans}
        if {"tools/call echo", "forward", "forwarded", "handler"} <= names:
            break
        time.sleep(0.1)
    request = next(s for s in spans if s.name == "tools/call echo")
    forward = next(s for s in spans if s.name == "forward")
    held = next(s for s in spans if s.name == "forwarded")
    assert forward.kind == forward.SPAN_KIND_CLIENT and forward.parent_span_id == request.span_id
    assert held.kind == held.SPAN_KIND_SERVER and held.parent_span_id == forward.span_id
    assert request.trace_id == forward.trace_id == held.trace_id
    inside_held = {s.name for s in spans if s.parent_span_id == held.span_id}
    assert {"handler", "store commit"} <= inside_held, inside_held


def test_a_group_the_store_could_not_keep_is_counted_and_only_sent_commits_are_timed(tmp_path):
    """The disk fills: the write that fails fails its group before any COMMIT is sent. It
    is counted in mcp_actors.store.errors by its type, and the commit histogram holds only
    commits that were sent (none of them failed here)."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from engine.actors.session_actor import Lifetimes
    from engine.actors.settings import Settings
    from engine.actors.sqlite_store import SqliteBackend
    from engine.demo import app as demo_app
    from engine.local.asgi import McpAsgi
    from engine.local.runtime import LocalRuntime
    from engine.observe.telemetry import Telemetry
    from inproc import Harness

    reader = InMemoryMetricReader()

    def points(name: str) -> list:
        return [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == name for p in m.data.data_points]

    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        settings = Settings()
        settings.lifetimes = Lifetimes()
        asgi = McpAsgi(LocalRuntime(demo_app, settings.http, backend, settings.lifetimes), settings)
        telemetry = Telemetry(asgi.runtime, False, "t", "1", metric_reader=reader)
        await asgi.runtime.start()
        h = Harness(demo_app, backend)
        h.runtime = asgi.runtime
        sid = await h.initialize()
        pages = backend.db.execute("PRAGMA page_count").fetchone()[0]
        backend.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        r = await h.call(sid, 2, "tools/call", {"name": "echo", "arguments": {"text": "x" * 20000}})
        assert r.status == 503
        backend.db.execute("PRAGMA max_page_count = 1000000")
        errors = points("mcp_actors.store.errors")
        assert [(p.attributes["error.type"], p.value >= 1) for p in errors] == [("OperationalError", True)]
        timed = points("mcp_actors.store.commit.duration")
        assert timed and all("error.type" not in p.attributes for p in timed)
        assert sum(p.count for p in timed) >= 1
        await asgi.runtime.stop()
        telemetry.close()
        backend.close()

    asyncio.run(go())
