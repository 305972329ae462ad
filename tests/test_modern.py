"""MCP 2026-07-28 on the shared endpoint, rule by rule, over raw HTTP (no SDK between us and
the wire), plus what the conformance suite cannot see: requestState across restarts and
replicas, stream cancellation, listeners' cost."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from engine import App, Context
from engine.protocol import mcp_headers
from inproc import Harness
from modern_client import META, V, body, call, listen, modern_headers
from sse_client import events, headers as session_headers, initialize

def test_discover_describes_the_server(everything_server, client):
    r, msg, _ = call(client, everything_server.url, "d-1", "server/discover")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    result = msg["result"]
    assert msg["id"] == "d-1" and result["resultType"] == "complete"
    assert result["supportedVersions"][0] == V and "2025-11-25" in result["supportedVersions"]
    assert {"tools", "resources", "prompts", "logging", "completions"} <= set(result["capabilities"])
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"] == {"name": "mcp-actors-everything",
                                                                    "version": "0.1.0"}
    assert result["ttlMs"] == 0 and result["cacheScope"] == "public"
    assert "mcp-session-id" not in r.headers  # no session in this era


def test_every_result_has_its_result_type_and_cache_hints_where_the_spec_puts_them(everything_server, client):
    cacheable = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
    for rid, method in enumerate(cacheable):
        result = call(client, everything_server.url, rid, method)[1]["result"]
        assert result["resultType"] == "complete" and result["ttlMs"] == 0 and result["cacheScope"] == "public"
    read = call(client, everything_server.url, 9, "resources/read", {"uri": "test://static-text"})[1]["result"]
    assert read["resultType"] == "complete" and "ttlMs" in read and "cacheScope" in read
    tool = call(client, everything_server.url, 10, "tools/call", {"name": "test_simple_text", "arguments": {}})[1]["result"]
    assert tool["resultType"] == "complete" and "ttlMs" not in tool  # not a cacheable method
    prompt = call(client, everything_server.url, 11, "prompts/get", {"name": "test_simple_prompt"})[1]["result"]
    assert prompt["resultType"] == "complete" and prompt["messages"]


@pytest.mark.parametrize("meta, words", [
    (None, "_meta"),
    ({"io.modelcontextprotocol/protocolVersion": V}, "clientCapabilities"),
    ({"io.modelcontextprotocol/clientCapabilities": {}}, "protocolVersion"),
])
def test_request_meta_is_required(everything_server, client, meta, words):
    params = {} if meta is None else {"_meta": meta}
    r = client.post(everything_server.url, headers=modern_headers("tools/list"),
                    json={"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": params})
    assert r.status_code == 400 and r.json()["id"] == 5
    assert r.json()["error"]["code"] == -32602 and words in r.json()["error"]["message"]


def test_client_info_is_optional(everything_server, client):
    meta = {k: v for k, v in META.items() if not k.endswith("clientInfo")}
    r = client.post(everything_server.url, headers=modern_headers("tools/list"),
                    json={"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"_meta": meta}})
    assert r.status_code == 200 and r.json()["result"]["tools"]


@pytest.mark.parametrize("change, words", [
    ({"mcp-protocol-version": None}, "MCP-Protocol-Version header is missing"),
    ({"mcp-method": None}, "Mcp-Method header is missing"),
    ({"mcp-method": "tools/list"}, "does not match the method"),
    ({"mcp-method": "TOOLS/CALL"}, "does not match the method"),
    ({"mcp-name": None}, "Mcp-Name header is missing"),
    ({"mcp-name": "other_tool"}, "does not match"),
    ({"mcp-name": "=?base64?dGVzdF9zaW1wbGVfdGV4dA?=", }, "not valid base64"),  # no padding: not canonical
])
def test_mirrored_headers_must_match_the_body(everything_server, client, change, words):
    h = modern_headers("tools/call", "test_simple_text")
    for key, value in change.items():
        if value is None:
            h.pop(key)
        else:
            h[key] = value
    r = client.post(everything_server.url, headers=h, json=body(7, "tools/call", {"name": "test_simple_text", "arguments": {}}))
    assert r.status_code == 400 and r.json()["error"]["code"] == -32020, r.text
    assert words in r.json()["error"]["message"] and r.json()["id"] == 7


def test_mirrored_headers_accept_their_legitimate_forms(everything_server, client):
    name = base64.b64encode(b"test_simple_text").decode()
    for value in (f"=?base64?{name}?=",):
        h = modern_headers("tools/call", value)
        r = client.post(everything_server.url, headers=h, json=body(8, "tools/call", {"name": "test_simple_text"}))
        assert r.status_code == 200 and "result" in r.json(), value
    h = {k.upper(): v for k, v in modern_headers("tools/list").items()}  # header names are case-insensitive
    assert client.post(everything_server.url, headers=h, json=body(9, "tools/list")).status_code == 200


@pytest.mark.parametrize("region, header, ok", [
    ("eu-west", "eu-west", True),
    ("Grüße", "=?base64?" + base64.b64encode("Grüße".encode()).decode() + "?=", True),
    (" padded ", "=?base64?IHBhZGRlZCA=?=", True),
    ("=?base64?x?=", "=?base64?" + base64.b64encode(b"=?base64?x?=").decode() + "?=", True),
    ("eu-west", "us-east", False),
    ("eu-west", None, False),
    ("Hello", "=?base64?SGVsbG8?=", False),
])
def test_mcp_param_headers_follow_x_mcp_header(everything_server, client, region, header, ok):
    extra = {"mcp-param-region": header} if header is not None else {}
    r, msg, _ = call(client, everything_server.url, 11, "tools/call", {"name": "test_header_param", "arguments": {"region": region}},
                     **extra)
    if ok:
        assert r.status_code == 200 and msg["result"]["content"][0]["text"] == f"Region: {region}"
    else:
        assert r.status_code == 400 and msg["error"]["code"] == -32020


def test_header_values_decode_strictly():
    assert mcp_headers.decode("  test_simple_text  ") == "test_simple_text"  # edge whitespace is not part of it
    assert mcp_headers.decode("=?base64?SGVsbG8=?=") == "Hello"
    assert mcp_headers.decode("SGVsbG8=") == "SGVsbG8="  # no sentinel: literal
    assert mcp_headers.decode("=?base64?SGVsbG8=") == "=?base64?SGVsbG8="  # no suffix: literal
    for bad in ("=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?=", "=?base64?/w==?="):  # padding, alphabet, UTF-8
        with pytest.raises(mcp_headers.BadHeader):
            mcp_headers.decode(bad)
    assert mcp_headers.same("42", 42.0) and mcp_headers.same("true", True) and not mcp_headers.same("1", True)
    with pytest.raises(ValueError, match="number"):
        mcp_headers.annotations({"properties": {"x": {"type": "number", "x-mcp-header": "X"}}})
    with pytest.raises(ValueError, match="token"):
        mcp_headers.annotations({"properties": {"x": {"type": "string", "x-mcp-header": "a b"}}})
    with pytest.raises(ValueError, match="twice"):
        mcp_headers.annotations({"properties": {"x": {"type": "string", "x-mcp-header": "A"},
                                                "y": {"type": "string", "x-mcp-header": "a"}}})


def test_the_tool_listing_carries_the_annotation(everything_server, client):
    tools = call(client, everything_server.url, 12, "tools/list")[1]["result"]["tools"]
    schema = next(t for t in tools if t["name"] == "test_header_param")["inputSchema"]
    assert schema["properties"]["region"]["x-mcp-header"] == "Region"


def test_an_unsupported_version_names_the_supported_ones(everything_server, client):
    h = modern_headers("server/discover", **{"mcp-protocol-version": "v999.0.0"})
    r = client.post(everything_server.url, headers=h, json=body(13, "server/discover", meta={
        "io.modelcontextprotocol/protocolVersion": "v999.0.0"}))
    assert r.status_code == 400 and r.json()["id"] == 13
    error = r.json()["error"]
    assert error["code"] == -32022 and error["data"]["requested"] == "v999.0.0"
    assert error["data"]["supported"][0] == V and "2025-11-25" in error["data"]["supported"]


def test_a_missing_client_capability_is_minus_32021(everything_server, client):
    r, msg, _ = call(client, everything_server.url, 14, "tools/call", {"name": "test_missing_capability", "arguments": {}})
    assert r.status_code == 400 and msg["error"]["code"] == -32021
    assert msg["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}
    r, msg, _ = call(client, everything_server.url, 15, "tools/call", {"name": "test_missing_capability", "arguments": {}},
                     meta={"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}})
    assert msg["result"]["content"][0]["text"] == "The client declared sampling."


@pytest.mark.parametrize("method", ["initialize", "ping", "logging/setLevel", "resources/subscribe",
                                    "resources/unsubscribe", "no/such/method"])
def test_removed_and_unknown_methods_are_404(everything_server, client, method):
    r, msg, _ = call(client, everything_server.url, 16, method, {"uri": "test://static-text"} if "subscribe" in method else {})
    assert r.status_code == 404 and msg["error"]["code"] == -32601 and msg["id"] == 16


def test_get_and_delete_are_405_and_notifications_202(everything_server, client):
    h = modern_headers("tools/list")
    assert client.get(everything_server.url, headers={**h, "accept": "text/event-stream"}).status_code == 405
    r = client.delete(everything_server.url, headers=h)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": META}}
    assert client.post(everything_server.url, headers=modern_headers("notifications/cancelled"), json=note).status_code == 202


def test_a_resource_not_found_is_invalid_params_with_its_uri(everything_server, client):
    r, msg, _ = call(client, everything_server.url, 17, "resources/read", {"uri": "test://nope"})
    assert r.status_code == 400 and msg["error"]["code"] == -32602 and msg["error"]["data"] == {"uri": "test://nope"}


def test_logs_follow_the_level_each_request_names(everything_server, client):
    _, msg, notes = call(client, everything_server.url, 18, "tools/call", {"name": "test_logging_tool", "arguments": {}})
    assert notes == [] and msg["result"]["content"][0]["text"] == "Logging tool finished"
    _, msg, notes = call(client, everything_server.url, 19, "tools/call", {"name": "test_logging_tool", "arguments": {}},
                         meta={"io.modelcontextprotocol/logLevel": "warning"})
    assert [n["params"]["level"] for n in notes] == ["warning"]
    _, msg, notes = call(client, everything_server.url, 20, "tools/call", {"name": "test_logging_tool", "arguments": {}},
                         meta={"io.modelcontextprotocol/logLevel": "debug"})
    assert [n["params"]["level"] for n in notes] == ["info", "warning"]
    r, msg, _ = call(client, everything_server.url, 21, "tools/call", {"name": "test_logging_tool", "arguments": {}},
                     meta={"io.modelcontextprotocol/logLevel": "loud"})
    assert r.status_code == 400 and msg["error"]["code"] == -32602


def test_progress_streams_without_event_ids_and_with_proxy_headers(everything_server, client):
    r, msg, notes = call(client, everything_server.url, 22, "tools/call", {"name": "test_tool_with_progress", "arguments": {}},
                         meta={"progressToken": "p-1"})
    assert r.headers["content-type"] == "text/event-stream" and r.headers["x-accel-buffering"] == "no"
    assert "\nid:" not in "\n" + r.text and not r.text.startswith("id:")  # not resumable in this era
    assert [n["params"]["progress"] for n in notes] == [0, 50, 100]
    assert msg["result"]["resultType"] == "complete"


# -- input-required round trips ------------------------------------------------------------------


def ask_name(client, url, rid, responses=None, state=None, arguments=None):
    params = {"name": "test_input_required_result_elicitation", "arguments": arguments or {}}
    if responses is not None:
        params["inputResponses"] = responses
    if state is not None:
        params["requestState"] = state
    return call(client, url, rid, "tools/call", params,
                meta={"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}})[1]


ALICE = {"user_name": {"action": "accept", "content": {"name": "Alice"}}}


def test_an_elicitation_becomes_an_input_required_round_trip(everything_server, client):
    first = ask_name(client, everything_server.url, 30)["result"]
    assert first["resultType"] == "input_required"
    question = first["inputRequests"]["user_name"]
    assert question["method"] == "elicitation/create" and question["params"]["message"] == "What is your name?"
    assert isinstance(first["requestState"], str)
    done = ask_name(client, everything_server.url, 31, ALICE, first["requestState"])["result"]
    assert done["resultType"] == "complete" and done["content"][0]["text"] == "Hello, Alice!"
    again = ask_name(client, everything_server.url, 32, {"user_name": 12345})["result"]
    assert again["resultType"] == "input_required"  # a malformed answer is asked again
    error = ask_name(client, everything_server.url, 33, "not an object")["error"]
    assert error["code"] == -32602


def test_request_state_is_unforgeable_and_bound_to_its_request(everything_server, client):
    state = ask_name(client, everything_server.url, 34)["result"]["requestState"]
    body_part, mac = state.split(".")
    for bad in (state + "-TAMPERED", body_part + "." + mac[::-1], "x.y", "garbage"):
        assert ask_name(client, everything_server.url, 35, ALICE, bad)["error"]["code"] == -32602
    moved = ask_name(client, everything_server.url, 36, ALICE, state, arguments={"extra": 1})  # other arguments
    assert moved["error"]["code"] == -32602 and "another request" in moved["error"]["message"]


def test_a_multi_round_state_accumulates_answers(everything_server, client):
    def go(rid, responses=None, state=None):
        params = {"name": "test_input_required_result_multi_round", "arguments": {}}
        if responses:
            params.update(inputResponses=responses, requestState=state)
        return call(client, everything_server.url, rid, "tools/call", params,
                    meta={"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}})[1]["result"]

    r1 = go(40)
    assert list(r1["inputRequests"]) == ["step1"]
    r2 = go(41, {"step1": {"action": "accept", "content": {"name": "Ann"}}}, r1["requestState"])
    assert list(r2["inputRequests"]) == ["step2"] and r2["requestState"] != r1["requestState"]
    r3 = go(42, {"step2": {"action": "accept", "content": {"color": "teal"}}}, r2["requestState"])
    assert r3["content"][0]["text"] == "Ann likes teal"


def test_questions_asked_together_come_together(everything_server, client):
    caps = {"elicitation": {}, "sampling": {}, "roots": {}}
    params = {"name": "test_input_required_result_multiple_inputs", "arguments": {}}
    result = call(client, everything_server.url, 43, "tools/call", params,
                  meta={"io.modelcontextprotocol/clientCapabilities": caps})[1]["result"]
    assert set(result["inputRequests"]) == {"user_name", "greeting", "client_roots"}


def test_request_state_survives_a_restart_and_serves_across_replicas(start_server, tmp_path):
    """The state is sealed, not stored: any replica with the same secret finishes the round
    another began, and a restart on the same store (its generated secret kept) does too."""
    store = f"sqlite:{tmp_path}/state.db"
    a = start_server("examples.everything:app", "--store", store)
    with httpx.Client(timeout=10) as c:
        state = ask_name(c, a.url, 50)["result"]["requestState"]
        a.stop()
        restarted = start_server("examples.everything:app", "--store", store)
        assert ask_name(c, restarted.url, 51, ALICE, state)["result"]["content"][0]["text"] == "Hello, Alice!"
        one = start_server("examples.everything:app", "--store", "memory", "--secret", "shared-secret")
        two = start_server("examples.everything:app", "--store", "memory", "--secret", "shared-secret")
        other = start_server("examples.everything:app", "--store", "memory", "--secret", "another-secret")
        state = ask_name(c, one.url, 52)["result"]["requestState"]
        assert ask_name(c, two.url, 53, ALICE, state)["result"]["content"][0]["text"] == "Hello, Alice!"
        assert ask_name(c, other.url, 54, ALICE, state)["error"]["code"] == -32602


def test_expired_request_state_is_refused():
    from engine.protocol import request_state

    key = request_state.derive("k", "request-state")
    bound = request_state.binding("tools/call", "t", {})
    sealed = request_state.seal(key, {"a": 1}, bound, now=1000.0, ttl=60)
    assert request_state.open_state(key, sealed, bound, now=1059.0) == {"a": 1}
    with pytest.raises(request_state.StateError, match="expired"):
        request_state.open_state(key, sealed, bound, now=1061.0)


# -- the same app in both eras ------------------------------------------------------------------


def test_one_app_serves_both_eras_on_one_endpoint(everything_server, client):
    sid = initialize(client, everything_server.url)
    r = client.post(everything_server.url, headers=session_headers(sid), json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_simple_text"}})
    session_result = [e.message for e in events(r.text.splitlines()) if e.message][-1]["result"]
    modern_result = call(client, everything_server.url, 2, "tools/call", {"name": "test_simple_text"})[1]["result"]
    assert session_result["content"] == modern_result["content"]
    assert "resultType" not in session_result  # each era gets its own shape
    modern_error = call(client, everything_server.url, 3, "resources/read", {"uri": "test://nope"})[1]["error"]
    r = client.post(everything_server.url, headers=session_headers(sid), json={
        "jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": "test://nope"}})
    session_error = [e.message for e in events(r.text.splitlines()) if e.message][-1]["error"]
    assert (modern_error["code"], session_error["code"]) == (-32602, -32002)


# -- listen streams ------------------------------------------------------------------------------


def test_listen_acknowledges_then_delivers_tagged_filtered_notifications(everything_server, client):
    tools = listen(client, everything_server.url, 60, {"toolsListChanged": True})
    prompts = listen(client, everything_server.url, "p-61", {"promptsListChanged": True, "bogus": True})
    try:
        t_events, p_events = events(tools.iter_lines()), events(prompts.iter_lines())
        ack = next(t_events).message
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        assert ack["params"] == {"_meta": {"io.modelcontextprotocol/subscriptionId": 60},
                                 "notifications": {"toolsListChanged": True}}
        assert next(p_events).message["params"]["notifications"] == {"promptsListChanged": True}
        with httpx.Client(timeout=10) as other:
            call(other, everything_server.url, 62, "tools/call", {"name": "test_trigger_tool_change", "arguments": {}})
            call(other, everything_server.url, 63, "tools/call", {"name": "test_trigger_prompt_change", "arguments": {}})
        changed = next(t_events).message
        assert changed == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
                           "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": 60}}}
        assert next(p_events).message["method"] == "notifications/prompts/list_changed"  # and not the tools one
    finally:
        tools.close()
        prompts.close()


def test_listen_with_a_malformed_filter_is_invalid_params(everything_server, client):
    r, msg, _ = call(client, everything_server.url, 64, "subscriptions/listen", {"notifications": {"toolsListChanged": "yes"}})
    assert r.status_code == 400 and msg["error"]["code"] == -32602


# -- in process: cancellation, the Context, many idle listeners ------------------------------------------


def test_closing_the_stream_cancels_the_handler_and_the_context_has_no_session():
    app = App("cancel")
    seen: dict = {}

    @app.tool()
    async def slow(ctx: Context) -> str:
        seen.update(session=ctx.session_id, version=ctx.protocol_version)
        await ctx.progress(1, 2)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return "done"

    async def go():
        h = Harness(app)
        r = await h.request("POST", modern_headers("tools/call", "slow"),
                            body(1, "tools/call", {"name": "slow"}, {"progressToken": 1}))
        assert r.stream is not None
        assert b"notifications/progress" in await r.stream.next()
        r.stream.detach()  # the client closed the stream
        await asyncio.sleep(0.05)

    asyncio.run(go())
    assert seen == {"session": None, "version": V, "cancelled": True}


def test_many_idle_listeners_cost_little_memory():
    import tracemalloc

    from engine.demo import app

    async def go():
        h = Harness(app)
        streams = []
        for i in range(50):  # warm
            streams.append((await h.request("POST", modern_headers("subscriptions/listen"), body(
                i, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}))).stream)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            streams.append((await h.request("POST", modern_headers("subscriptions/listen"), body(
                1000 + i, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}))).stream)
        per_listener = (tracemalloc.get_traced_memory()[0] - before) / 2000
        tracemalloc.stop()
        assert h.runtime.hub.announce("notifications/tools/list_changed", None, None) == 2050
        for s in streams:
            s.detach()
        assert not h.runtime.hub.listeners
        return per_listener

    per_listener = asyncio.run(go())
    assert per_listener < 2048, per_listener  # the hub's own share; the HTTP response is the server's
