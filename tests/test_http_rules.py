"""The HTTP rules as pure functions: the same calls the Worker makes."""

import pytest

from engine.protocol import http, jsonrpc, modern
from engine.protocol.http import HttpConfig, HttpError

CFG = HttpConfig()
GOOD_POST = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def status_of(fn, *args):
    with pytest.raises(HttpError) as info:
        fn(*args)
    return info.value.status


def test_host_and_origin():
    http.check_host_and_origin({"host": "localhost:8000", "origin": "http://127.0.0.1:3000"}, CFG)
    http.check_host_and_origin({"host": "[::1]:8000", "origin": "http://[::1]"}, CFG)
    assert status_of(http.check_host_and_origin, {"host": "evil.example.com"}, CFG) == 421
    assert status_of(http.check_host_and_origin, {"host": "localhost", "origin": "http://evil.example.com"}, CFG) == 403
    assert status_of(http.check_host_and_origin, {"origin": "null"}, CFG) == 403
    assert status_of(http.check_host_and_origin, {"host": "localhost.evil.com"}, CFG) == 421
    cfg = HttpConfig(allowed_origins=("https://app.example.com",), allowed_hosts=("*",))
    http.check_host_and_origin({"host": "anything", "origin": "https://app.example.com"}, cfg)
    assert status_of(http.check_host_and_origin, {"origin": "http://app.example.com"}, cfg) == 403
    sub = HttpConfig(allowed_hosts=("*.workers.dev",))
    http.check_host_and_origin({"host": "mcp-actors.me.workers.dev"}, sub)
    assert status_of(http.check_host_and_origin, {"host": "workers.dev.evil.com"}, sub) == 421
    assert status_of(http.check_host_and_origin, {"host": "evilworkers.dev"}, sub) == 421


def test_post_headers():
    http.check_post(GOOD_POST, CFG)
    http.check_post({**GOOD_POST, "accept": "*/*", "content-type": "application/json; charset=utf-8"}, CFG)
    assert status_of(http.check_post, {**GOOD_POST, "accept": "application/json"}, CFG) == 406
    assert status_of(http.check_post, {**GOOD_POST, "accept": "text/event-stream"}, CFG) == 406
    assert status_of(http.check_post, {"content-type": "application/json"}, CFG) == 406
    assert status_of(http.check_post, {**GOOD_POST, "content-type": "text/plain"}, CFG) == 415
    assert status_of(http.check_post, {**GOOD_POST, "content-length": str(CFG.max_body + 1)}, CFG) == 413
    assert status_of(http.check_post, {**GOOD_POST, "content-length": "lots"}, CFG) == 400
    assert status_of(http.check_get, {"accept": "application/json"}) == 406
    http.check_get({"accept": "text/event-stream"})


def test_versions_and_sessions():
    assert http.check_version_header({}) == "2025-03-26"
    assert http.check_version_header({"mcp-protocol-version": "2025-06-18"}) == "2025-06-18"
    assert status_of(http.check_version_header, {"mcp-protocol-version": "2030-01-01"}) == 400
    assert http.require_session({"mcp-session-id": "abc"}) == "abc"
    msg = jsonrpc.decode(b'{"jsonrpc":"2.0","id":9,"method":"tools/list","params":'
                         b'{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}')
    plain = jsonrpc.decode(b'{"jsonrpc":"2.0","id":9,"method":"tools/list"}')
    assert modern.is_modern({}, msg)  # _meta names a version
    assert modern.is_modern({"mcp-session-id": "abc"}, msg)  # it does, whatever else is sent
    assert modern.is_modern({"mcp-protocol-version": "2026-07-28"}, plain)
    assert modern.is_modern({"mcp-protocol-version": "v999"}, plain)  # unknown: the 2026 ladder answers -32022
    assert not modern.is_modern({"mcp-protocol-version": "2025-06-18"}, plain)
    assert not modern.is_modern({"mcp-protocol-version": "v999", "mcp-session-id": "abc"}, plain)  # a session's
    assert not modern.is_modern({}, plain)
    err = http.stateless_not_served("2026-07-28", msg)
    assert err.code == -32022 and err.request_id == 9 and err.status == 400
    assert err.data == {"supported": ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
                        "requested": "2026-07-28"}
    with pytest.raises(HttpError) as info:
        http.require_session({}, jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"method":"ping"}'))
    assert info.value.status == 400 and info.value.code == -32600


def test_method_not_allowed_names_allow():
    err = http.method_not_allowed("PUT")
    assert err.status == 405 and dict(err.headers)["allow"] == "GET, POST, DELETE"
    assert b'"id":null' in err.body()
