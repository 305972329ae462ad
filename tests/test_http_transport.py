"""Streamable HTTP over real sockets: every bad input gets the spec's status and error,
and the server keeps serving everybody else afterwards."""

from __future__ import annotations

import threading
import time

import httpx

from sse_client import call, events, headers, initialize


def rpc_error(r: httpx.Response) -> dict:
    body = r.json()
    assert body["jsonrpc"] == "2.0"
    return body["error"]


def echo_works(client, url, sid, rid=999):
    evs = call(client, url, sid, rid, "tools/call", {"name": "echo", "arguments": {"text": "still here"}})
    assert evs[-1].message["result"]["content"] == [{"type": "text", "text": "still here"}]


def test_initialize_returns_session_and_negotiates(client, demo_server):
    url = demo_server.url
    for asked, answered in [("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                            ("2025-03-26", "2025-03-26"), ("2024-11-05", "2024-11-05"),
                            ("1999-01-01", "2025-11-25")]:
        r = client.post(url, headers=headers(version=None), json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        assert r.status_code == 200
        assert r.json()["result"]["protocolVersion"] == answered
        sid = r.headers["mcp-session-id"]
        assert len(sid) >= 32 and all(0x21 <= ord(c) <= 0x7E for c in sid)


def test_bad_inputs_get_spec_statuses(client, demo_server):
    url = demo_server.url
    sid = initialize(client, url)
    h = headers(sid)

    r = client.put(url, headers=h, content=b"{}")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST, DELETE"
    assert "Method Not Allowed" in rpc_error(r)["message"]

    r = client.post(url, headers={**h, "accept": "application/json"}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 406 and "text/event-stream" in rpc_error(r)["message"]

    r = client.get(url, headers={**h, "accept": "application/json"})
    assert r.status_code == 406

    r = client.post(url, headers={**h, "content-type": "text/plain"}, content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert r.status_code == 415 and rpc_error(r)["code"] == -32600

    r = client.post(url, headers=h, content=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert r.status_code == 400 and rpc_error(r)["code"] == -32700
    assert r.json()["id"] is None

    r = client.post(url, headers=h, json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert r.status_code == 400 and rpc_error(r)["code"] == -32600 and "batch" in rpc_error(r)["message"]

    r = client.post(url, headers=h, json={"jsonrpc": "1.0", "id": 1, "method": "ping"})
    assert r.status_code == 400 and rpc_error(r)["code"] == -32600

    r = client.post(url, headers=h, json={"id": 1, "method": "ping"})
    assert r.status_code == 400 and rpc_error(r)["code"] == -32600

    r = client.post(url, headers=headers(None), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 400 and "Mcp-Session-Id" in rpc_error(r)["message"]
    assert r.json()["id"] == 1

    r = client.post(url, headers=headers("no-such-session"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 404 and rpc_error(r)["code"] == -32001

    r = client.post(url, headers=headers(sid, "2099-01-01"), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 400 and rpc_error(r)["data"]["supported"][0] == "2025-11-25"

    r = client.post(url, headers={**h, "origin": "http://evil.example.com"}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 403 and "evil.example.com" in rpc_error(r)["message"]

    r = client.post(url, headers={**h, "host": "evil.example.com"}, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 421

    r = client.post(url, headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                          "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                                     "clientInfo": {"name": "t", "version": "0"}}})
    assert r.status_code == 400 and "must not carry" in rpc_error(r)["message"]

    r = client.post(url.replace("/mcp", "/other"), headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 404

    r = client.post(url, headers={**h, "content-length": "5000000"}, content=b"x" * 5_000_000)
    assert r.status_code == 413 and "4194304" in rpc_error(r)["message"]

    # JSON-RPC level errors ride on a normal 200 response of the request.
    evs = call(client, url, sid, 7, "no/such/method")
    assert evs[-1].message["error"]["code"] == -32601 and evs[-1].message["id"] == 7
    evs = call(client, url, sid, 8, "tools/call", {"name": "nope"})
    assert evs[-1].message["error"]["code"] == -32602

    echo_works(client, url, sid)


def test_allowed_origins_and_cors(client, demo_server):
    url = demo_server.url
    r = client.post(url, headers={**headers(version=None), "origin": "http://localhost:3000"}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "mcp-session-id" in r.headers["access-control-expose-headers"]
    r = client.options(url, headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"})
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
    r = client.options(url)
    assert r.status_code == 405
    r = client.post(url, headers={**headers(version=None), "origin": "http://localhost:3000", "accept": "application/json"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 406 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = client.post(url, headers={**headers(version=None), "origin": "http://evil.example.com"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_configured_allow_lists(client, start_server):
    server = start_server(None, "--allowed-origin", "https://app.example.com", "--allowed-host", "mcp.example.com")
    h = {**headers(version=None), "origin": "https://app.example.com", "host": "mcp.example.com"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    assert client.post(server.url, headers=h, json=body).status_code == 200
    assert client.post(server.url, headers={**h, "origin": "https://other.example.com"}, json=body).status_code == 403
    assert client.post(server.url, headers={**h, "host": "other.example.com"}, json=body).status_code == 421


def test_delete_ends_session_then_404(client, demo_server):
    url = demo_server.url
    sid = initialize(client, url)
    other = initialize(client, url)
    assert client.delete(url, headers=headers(sid)).status_code == 204
    r = client.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 404
    assert client.get(url, headers={**headers(sid), "accept": "text/event-stream"}).status_code == 404
    assert client.delete(url, headers=headers(sid)).status_code == 404
    assert client.delete(url, headers=headers(None)).status_code == 400
    echo_works(client, url, other)  # no other session is touched


def test_second_get_stream_conflicts(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        get_headers = {**headers(sid), "accept": "text/event-stream"}
        with c.stream("GET", url, headers=get_headers) as first:
            assert first.status_code == 200
            assert first.headers["content-type"] == "text/event-stream"
            with httpx.Client(timeout=10) as c2:
                second = c2.get(url, headers=get_headers)
                assert second.status_code == 409 and "already has an open GET stream" in second.json()["error"]["message"]
        # once the first is gone, a new GET is allowed again
        deadline = time.monotonic() + 5
        while True:
            with c.stream("GET", url, headers=get_headers) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "GET stream never freed after the client left"
            time.sleep(0.05)


def test_unrelated_notifications_go_on_get_stream(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        call(c, url, sid, 1, "resources/subscribe", {"uri": "demo://notes"})
        got: list = []

        def listen():
            with httpx.Client(timeout=10) as c2:
                with c2.stream("GET", url, headers={**headers(sid), "accept": "text/event-stream"}) as r:
                    for ev in events(r.iter_lines()):
                        if ev.message:
                            got.append(ev)
                            return

        t = threading.Thread(target=listen)
        t.start()
        time.sleep(0.3)
        evs = call(c, url, sid, 2, "tools/call", {"name": "add_note", "arguments": {"text": "hi"}})
        t.join(5)
        assert not t.is_alive()
        assert got[0].message == {"jsonrpc": "2.0", "method": "notifications/resources/updated",
                                  "params": {"uri": "demo://notes"}}
        assert got[0].id.startswith("0:")
        # the notification went on the GET stream only, never on the POST stream
        assert all("resources/updated" not in e.data for e in evs)


def test_reused_in_flight_id_is_refused_at_once(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "long_task", "arguments": {"steps": 3, "interval_s": 0.3}}}
        with c.stream("POST", url, json=body, headers=headers(sid)) as first:
            # Refused while the first is still running (no timing needed: had the second
            # waited for the first, the id would be free and the echo would succeed).
            with httpx.Client(timeout=3) as c2:
                evs = call(c2, url, sid, 5, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
            err = evs[-1].message["error"]
            assert err["code"] == -32600 and "already in flight" in err["message"]
            final = [e.message for e in events(first.iter_lines()) if e.message]
        assert final[-1]["id"] == 5 and "finished 3 steps" in final[-1]["result"]["content"][0]["text"]
        echo_works(c, url, sid, rid=5)  # the id is free again once the first request finished


def test_cancellation_stops_the_handler(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        body = {"jsonrpc": "2.0", "id": 11, "method": "tools/call",
                "params": {"name": "long_task", "arguments": {"steps": 50, "interval_s": 0.1},
                           "_meta": {"progressToken": 11}}}
        with c.stream("POST", url, json=body, headers=headers(sid)) as r:
            lines = r.iter_lines()
            seen = []
            for ev in events(lines):
                if ev.message:
                    seen.append(ev.message)
                    break
            r2 = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                         "params": {"requestId": 11, "reason": "test"}})
            assert r2.status_code == 202
            rest = [ev.message for ev in events(lines) if ev.message]  # the stream ends: no more steps
        assert seen[0]["method"] == "notifications/progress"
        assert all("result" not in m and "error" not in m for m in rest)  # no response after cancel
        assert len(seen) + len(rest) < 50
        echo_works(c, url, sid, rid=11)


def test_json_response_mode(client, start_server):
    server = start_server(None, "--json-response")
    sid = initialize(client, server.url)
    r = client.post(server.url, headers=headers(sid), json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "long_task", "arguments": {"steps": 2, "interval_s": 0.05}}})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "finished 2 steps" in r.json()["result"]["content"][0]["text"]
    r = client.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 3, "method": "ping"})
    assert r.json() == {"jsonrpc": "2.0", "id": 3, "result": {}}


def test_accept_wildcards(client, demo_server):
    sid = initialize(client, demo_server.url)
    r = client.post(demo_server.url, headers={**headers(sid), "accept": "*/*"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 200


def test_old_clients_get_no_priming_event(client, demo_server):
    sid = initialize(client, demo_server.url, version="2025-03-26")
    evs = call(client, demo_server.url, sid, 1, "ping", version="2025-03-26")
    assert len(evs) == 1 and evs[0].message["result"] == {}
    sid = initialize(client, demo_server.url, version="2025-11-25")
    evs = call(client, demo_server.url, sid, 1, "ping")
    assert evs[0].data == "" and evs[0].retry == 1000 and evs[0].id == "1:1"
    assert evs[1].message["result"] == {} and evs[1].id == "1:2"



def test_health_and_readiness_endpoints(client, demo_server):
    """/healthz and /readyz beside /mcp: plain text, never cached, GET or HEAD only."""
    base = demo_server.url.removesuffix("/mcp")
    for path in ("/healthz", "/readyz"):
        r = client.get(base + path)
        assert (r.status_code, r.text, r.headers["cache-control"]) == (200, "ok\n", "no-store")
        assert client.head(base + path).status_code == 200
        r = client.post(base + path, content=b"{}")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.get(base + "/readyz/x").status_code == 404
