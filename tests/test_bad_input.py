"""Bad input of every kind: a 4xx with the spec's code and a JSON-RPC error a person can act
on, never a 500, never text/plain, and the session (and every other) carries on."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from conftest import ROOT
from sse_client import events, headers, initialize


def last_message(r: httpx.Response) -> dict:
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.json()
    return [e for e in events(r.text.splitlines()) if e.message][-1].message


def deep(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@pytest.fixture(scope="module")
def session(demo_server):
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, demo_server.url, capabilities={"elicitation": {"url": {}}})
        yield c, demo_server.url, sid


def assert_json_error(r: httpx.Response, status: int, code: int, words: str = "") -> dict:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("application/json"), r.headers
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    return error


def test_objects_nested_too_deep_are_refused(session):
    c, url, sid = session
    for body in (deep(100_000), '{"jsonrpc":"2.0","id":1,"method":"ping","params":' + deep(100_000) + "}"):
        r = c.post(url, headers=headers(sid), content=body)
        assert_json_error(r, 400, -32600, "levels deep")
    assert last_message(c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "ping"})) == {
        "jsonrpc": "2.0", "id": 2, "result": {}}


def test_a_cancellation_naming_an_object_is_invalid_params(session):
    c, url, sid = session
    r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "method": "notifications/cancelled",
                                               "params": {"requestId": {"x": 1}}})
    assert_json_error(r, 400, -32602, "requestId")


def test_overlong_ids_and_progress_tokens_are_refused(session):
    c, url, sid = session
    r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": "i" * 5000, "method": "ping"})
    assert_json_error(r, 400, -32600, "longer than 256")
    r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "t"}, "_meta": {"progressToken": "p" * 5000}}})
    assert_json_error(r, 400, -32602, "progressToken")


def test_a_last_event_id_of_non_ascii_digits_is_400(session):
    c, url, sid = session
    for bad in ("¹²:3", "1:²", "x" * 1000):
        # as the server reads a header (latin-1): '¹²' are digits to str.isdigit, not to int()
        r = c.get(url, headers={**headers(sid), "accept": "text/event-stream", "last-event-id": bad.encode("latin-1")})
        assert_json_error(r, 400, -32600)


@pytest.mark.parametrize("level", ["loud", ["info"], {"l": 1}, None, 7])
def test_a_mistyped_log_level_is_invalid_params(session, level):
    c, url, sid = session
    r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 4, "method": "logging/setLevel",
                                               "params": {"level": level}})
    assert last_message(r)["error"]["code"] == -32602


def test_a_bogus_cursor_is_invalid_params_and_a_real_one_pages(start_server):
    with httpx.Client(timeout=10) as c:
        server = start_server("examples.everything:app")
        sid = initialize(c, server.url)
        for cursor in ("bogus", "", "dG9vbHM6OTk5OQ", 12):
            r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 5, "method": "tools/list",
                                                              "params": {"cursor": cursor}})
            assert last_message(r)["error"]["code"] == -32602, cursor


def test_pagination_walks_a_long_list():
    import asyncio

    from engine import App
    from inproc import Harness, messages

    app = App("many", page_size=10)
    for i in range(25):
        app.tool(name=f"t{i:02d}")(lambda: "x")

    async def go():
        h = Harness(app)
        sid = await h.initialize()
        names, cursor, pages = [], None, 0
        while True:
            params = {"cursor": cursor} if cursor else {}
            result = messages((await h.call(sid, pages, "tools/list", params)).body)[-1]["result"]
            names += [t["name"] for t in result["tools"]]
            pages += 1
            cursor = result.get("nextCursor")
            if cursor is None:
                break
        return names, pages

    names, pages = asyncio.run(go())
    assert names == [f"t{i:02d}" for i in range(25)] and pages == 3


def test_host_must_be_a_host(demo_server):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}}
    for host in ("localhost:80@evil.example", "localhost/x", "local host", "localhost:80:90"):
        r = httpx.post(demo_server.url, headers={**headers(None), "host": host}, json=init)
        assert r.status_code == 400, host
        assert r.headers["content-type"].startswith("application/json")


def test_mistyped_initialize_params_are_invalid_params(demo_server):
    for params in ({"protocolVersion": 1, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
                   {"protocolVersion": "2025-11-25", "capabilities": "all", "clientInfo": {"name": "c", "version": "1"}},
                   {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": ["c"]}):
        r = httpx.post(demo_server.url, headers=headers(None),
                       json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
        assert r.json()["error"]["code"] == -32602 and "mcp-session-id" not in r.headers


def test_legacy_sse_serves_nothing_before_initialize(demo_server):
    sse = demo_server.url.replace("/mcp", "/sse")
    with httpx.Client(timeout=10) as c, c.stream("GET", sse, headers={"accept": "text/event-stream"}) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: endpoint"
        messages_url = sse.replace("/sse", next(lines)[len("data: "):])
        post = c.post(messages_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert post.status_code == 202
        first = next(e for e in events(lines) if e.message)
        assert first.message["id"] == 1 and first.message["error"]["code"] == -32600
        assert "not initialized" in first.message["error"]["message"]


def test_form_elicitation_is_not_sent_to_a_client_that_declared_only_url_mode(session):
    c, url, sid = session
    r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                                               "params": {"name": "confirm", "arguments": {"action": "go"}}})
    got = [e.message for e in events(r.text.splitlines()) if e.message]
    assert all(m.get("method") != "elicitation/create" for m in got)  # nothing asked of the client
    result = got[-1]["result"]
    assert result["isError"] and "form-mode elicitation" in result["content"][0]["text"]


def test_no_input_makes_a_500_or_text_plain(session):
    """A sweep of malformed requests: whatever they are, the answer is a JSON-RPC error."""
    c, url, sid = session
    bodies = [b"", b"null", b"[]", b"[[]]", b'"s"', b"1e999999", b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}',
              b'{"jsonrpc":"2.0","id":1,"method":7}', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}',
              b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["x"]}}',
              b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[1]}}',
              b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":{}}}',
              b'{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"x"}}',
              b'{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize","arguments":{"text":[]}}}',
              b'{"jsonrpc":"2.0","id":99999999999999999999999,"method":"ping"}',
              b'{"jsonrpc":"2.0","id":1,"result":{}}', b'{"jsonrpc":"2.0","id":{"a":1},"result":{}}',
              b'\xff\xfe', '{"jsonrpc":"2.0","id":1,"method":"\u00e9\u0000"}'.encode()]
    for body in bodies:
        r = c.post(url, headers=headers(sid), content=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
        if r.status_code != 202:
            assert r.headers["content-type"].split(";")[0] in ("application/json", "text/event-stream"), body
            assert "error" in last_message(r) or "result" in last_message(r), body
    assert last_message(c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 9, "method": "ping"})) == {
        "jsonrpc": "2.0", "id": 9, "result": {}}


# -- the command line ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "--port"), (["--port", "-1"], "--port"), (["--port", "x"], "--port"),
    (["--log-level", "loud"], "--log-level"), (["--path", "mcp"], "--path"),
    (["--session-ttl", "0"], "--session-ttl"), (["--max-body", "-5"], "--max-body"),
    (["--store", "redis:x"], "--store"),
])
def test_bad_command_line_values_are_named(args, words):
    proc = subprocess.run([sys.executable, "-m", "engine", "serve", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=20)
    assert proc.returncode != 0
    assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "serving" not in proc.stdout


def test_no_banner_when_the_port_is_taken(start_server):
    server = start_server(None)
    proc = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(server.port), "--store", "memory"],
                          cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "serving" not in proc.stdout and "address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_asgi_app_mounts_under_a_prefix():
    import asyncio

    import engine
    from engine.demo import app

    asgi = engine.asgi_app(app)
    sent: list = []

    async def go():
        async def receive():
            return {"type": "http.request", "body": json.dumps({
                "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "c", "version": "1"}}}).encode()}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/mcp", "root_path": "/api", "query_string": b"",
                 "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                             (b"accept", b"application/json, text/event-stream")]}
        await asgi(scope, receive, send)

    asyncio.run(go())
    assert sent[0]["status"] == 200


def test_the_messages_path_answers_a_cors_preflight(demo_server):
    r = httpx.options(demo_server.url.replace("/mcp", "/messages"),
                      headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://localhost:3000"

