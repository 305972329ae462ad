"""Authorization: the server as an OAuth 2.1 resource server, and everything durable bound
to the principal that made it.

A stand-in authorization server (``tests/auth_server.py``) publishes its metadata and keys;
``python -m engine serve tests.auth_app:app --auth-issuer ...`` is driven over raw HTTP on
both transports and both eras, by the official Python client with a bearer token, and by
mcp-remote with a static ``Authorization`` header. The verifier's token matrix and the
pure rules run in-process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from auth_server import AuthServer
from conftest import Server
from engine.actors.auth import InvalidToken, JwtVerifier, metadata_urls
from engine.protocol import auth
from modern_client import call as modern_call, listen
from sse_client import events, headers as session_headers

SCOPE = "mcp:tools"
TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}},
                                                        "elicitation": {"form": {}}}}


@pytest.fixture(scope="module")
def issuer():
    server = AuthServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def secured(issuer):
    server = Server("tests.auth_app:app", "--auth-issuer", issuer.issuer, "--auth-scope", SCOPE, "--log-level", "debug")
    yield server
    server.stop()


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def init(client: httpx.Client, url: str, token: str) -> str:
    r = client.post(url, headers={**session_headers(version=None), **bearer(token)}, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    client.post(url, headers={**session_headers(sid), **bearer(token)},
                json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return sid


def rpc(client: httpx.Client, url: str, sid: str, token: str, rid: Any, method: str, params: dict | None = None):
    r = client.post(url, headers={**session_headers(sid), **bearer(token)},
                    json={"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
    if r.status_code != 200:
        return r, None
    return r, [e.message for e in events(r.text.splitlines()) if e.message][-1]


def challenge_of(r: httpx.Response) -> dict:
    value = r.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    return dict(part.strip().split("=", 1) for part in value[7:].split(", "))


# -- the pure rules ------------------------------------------------------------------------------


def test_where_the_metadata_lives_and_what_challenges_say():
    assert auth.metadata_path("/mcp") == "/.well-known/oauth-protected-resource/mcp"
    assert auth.metadata_url("https://h.example/tenant/mcp") == \
        "https://h.example/.well-known/oauth-protected-resource/tenant/mcp"
    assert auth.challenge("https://h.example/mcp") == \
        'Bearer resource_metadata="https://h.example/.well-known/oauth-protected-resource/mcp"'
    value = auth.challenge("https://h.example/mcp", ("a", "offline_access"), "invalid_token", 'bad "quote"\\')
    assert value == ('Bearer error="invalid_token", error_description="bad ?quote??", resource_metadata='
                     '"https://h.example/.well-known/oauth-protected-resource/mcp", scope="a"')
    rules = auth.AuthRules(issuers=("https://as",), scopes=("mcp", "offline_access"), name="x")
    assert auth.metadata_document(rules, "https://h/mcp") == {
        "resource": "https://h/mcp", "authorization_servers": ["https://as"], "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp"], "resource_name": "x"}


def test_reading_the_token():
    res, scopes = "https://h/mcp", ("s",)
    assert auth.bearer_token({"authorization": "bearer abc.def-_~+/="}, "", res, scopes) == "abc.def-_~+/="
    for headers, query, status, error in (
            ({}, "", 401, None),
            ({"authorization": "Basic dXNlcg=="}, "", 401, None),  # another scheme: no credentials
            ({"authorization": "Bearer a, Bearer b"}, "", 400, "invalid_request"),  # two headers, joined
            ({"authorization": "Bearer"}, "", 400, "invalid_request"),
            ({}, "access_token=abc", 401, "invalid_token"),  # never from the query string
            ({"authorization": "Bearer abc"}, "x=1&access_token=abc", 401, "invalid_token")):
        with pytest.raises(Exception) as caught:
            auth.bearer_token(headers, query, res, scopes)
        assert caught.value.status == status
        value = dict(caught.value.headers)["www-authenticate"]
        assert (f'error="{error}"' in value) if error else ("error=" not in value)


def test_scope_hierarchy():
    assert auth.implied(("files",), "files:write") and auth.implied(("files:write",), "files:write")
    assert not auth.implied(("files:read",), "files:write") and not auth.implied(("file",), "files:write")
    assert auth.implied(("a",), "a:b:c") and auth.implied(("a:b",), "a:b:c")
    assert auth.missing(("mcp", "files"), ("mcp:tools", "files:write", "admin")) == ("admin",)


# -- the verifier's token matrix (RFC 9068) ----------------------------------------------------------


AUD = "https://mcp.example.com/mcp"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_token_matrix(issuer):
    fetches: list[str] = []

    async def fetch(url: str) -> Any:
        fetches.append(url)
        return await asyncio.to_thread(lambda: httpx.get(url, timeout=5).json())

    verifier = JwtVerifier(issuer.issuer, AUD, fetch)
    now = int(time.time())
    good = issuer.token(AUD, scope="mcp:tools files")
    header, payload, sig = good.split(".")
    rs_n = issuer.jwks()["keys"][0]["n"] if issuer.jwks()["keys"][0]["kty"] == "RSA" else ""
    unsigned = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "rs256-1"}).encode()) + "." + payload
    accepted = {
        "RS256": good,
        "ES256": issuer.token(AUD, kid="es256-1"),
        "EdDSA": issuer.token(AUD, kid="eddsa-1"),
        "typ application/at+jwt": issuer.token(AUD, headers={"typ": "application/at+jwt"}),
        "aud list naming us": issuer.token(["https://other.example", AUD]),
        "aud with a trailing slash": issuer.token(AUD + "/"),
        "expired within the leeway": issuer.token(AUD, exp=now - 30),
    }
    refused = {
        "tampered": (f"{header}.{_b64(json.dumps({'sub': 'admin'}).encode())}.{sig}", "signature"),
        "alg none": (_b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "rs256-1"}).encode()) + "." + payload
                     + ".", "algorithm"),
        "HS256 keyed with the RSA modulus": (unsigned + "." + _b64(hmac.new(rs_n.encode(), unsigned.encode(),
                                                                             hashlib.sha256).digest()), "algorithm"),
        "ES256 header on the RSA kid": (issuer.token(AUD, kid="es256-1", headers={"kid": "rs256-1"}), "algorithm"),
        "unknown kid": (issuer.token(AUD, headers={"kid": "nope"}), "does not publish"),
        "typ JWT": (issuer.token(AUD, headers={"typ": "JWT"}), "typ"),
        "expired": (issuer.token(AUD, exp=now - 600), "expired"),
        "not yet valid": (issuer.token(AUD, nbf=now + 600), "not valid yet"),
        "issued in the future": (issuer.token(AUD, iat=now + 600), "not valid yet"),
        "another audience": (issuer.token("https://other.example/mcp"), "aud"),
        "another issuer": (issuer.token(AUD, iss="https://evil.example"), "issuer"),
        "no client_id": (issuer.token(AUD, client_id=None), "client_id"),
        "no exp": (issuer.token(AUD, exp=None), "exp"),
        "scope as a list": (issuer.token(AUD, scope=["mcp"]), "scope"),
        "unknown crit": (issuer.token(AUD, headers={"crit": ["ext"], "ext": 1}), "critical"),
        "not a JWT": ("not-a-jwt", "not a JWT"),
    }

    async def go() -> None:
        for name, token in accepted.items():
            principal = await verifier.verify(token)
            assert principal.subject == "alice" and principal.issuer == issuer.issuer, name
        assert (await verifier.verify(good)).scopes == ("mcp:tools", "files")
        for name, (token, words) in refused.items():
            with pytest.raises(InvalidToken, match=words):
                await verifier.verify(token)

    asyncio.run(go())
    assert fetches[0] == f"{issuer.origin}/.well-known/oauth-authorization-server"  # found by discovery


def test_keys_rotate_and_unknown_kids_refetch_at_a_limited_rate(issuer):
    async def fetch(url: str) -> Any:
        return await asyncio.to_thread(lambda: httpx.get(url, timeout=5).json())

    verifier = JwtVerifier(issuer.issuer, AUD, fetch, jwks_url=f"{issuer.origin}/jwks.json")

    async def go() -> None:
        await verifier.verify(issuer.token(AUD))
        before = issuer.jwks_fetches
        kid = issuer.add_key("ES256", f"rotated-{time.monotonic_ns()}")
        verifier._fetched_at -= 60  # the last fetch was a while ago
        await verifier.verify(issuer.token(AUD, kid=kid))  # a new key: fetched once
        assert issuer.jwks_fetches == before + 1
        secret = issuer.add_key("ES256", "never-published", publish=False)
        for _ in range(5):  # unknown kids within REFETCH_EVERY: no further fetches
            with pytest.raises(InvalidToken):
                await verifier.verify(issuer.token(AUD, kid=secret))
        assert issuer.jwks_fetches == before + 1

    asyncio.run(go())


def test_metadata_discovery_order_and_issuer_check():
    assert metadata_urls("https://as.example/tenant1") == [
        "https://as.example/.well-known/oauth-authorization-server/tenant1",
        "https://as.example/.well-known/openid-configuration/tenant1",
        "https://as.example/tenant1/.well-known/openid-configuration"]
    docs = {"https://as.example/.well-known/oauth-authorization-server/tenant1":
            {"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"},
            "https://as.example/tenant1/.well-known/openid-configuration":
            {"issuer": "https://as.example/tenant1", "jwks_uri": "https://as.example/keys"}}

    async def fetch(url: str) -> Any:
        if url not in docs:
            raise OSError("404")
        return docs[url]

    verifier = JwtVerifier("https://as.example/tenant1", AUD, fetch)
    assert asyncio.run(verifier._discover()) == "https://as.example/keys"  # the mismatching issuer is skipped


# -- end to end: the server as a resource server --------------------------------------------------


def test_protected_resource_metadata_is_public(secured, issuer, client):
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        r = client.get(secured.url.replace("/mcp", path), headers={"origin": "https://app.example"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        assert r.json() == {"resource": secured.url, "authorization_servers": [issuer.issuer],
                            "bearer_methods_supported": ["header"], "scopes_supported": [SCOPE],
                            "resource_name": "secured"}
        assert "max-age" in r.headers["cache-control"]


def test_missing_bad_and_insufficient_tokens(secured, issuer, client):
    url, meta = secured.url, secured.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    r = client.post(url, headers=session_headers(version=None), json=ping)
    assert r.status_code == 401 and challenge_of(r) == {"resource_metadata": f'"{meta}"', "scope": f'"{SCOPE}"'}
    assert "www-authenticate" in r.headers.get("access-control-expose-headers", "www-authenticate")
    used = [issuer.token(url, exp=int(time.time()) - 600, scope=SCOPE), issuer.token("http://elsewhere/mcp",
                                                                                      scope=SCOPE)]
    for token, why in ((used[0], "expired"), (used[1], "aud"), ("a.b.c", "not a JWT")):
        r = client.post(url, headers={**session_headers(version=None), **bearer(token)}, json=ping)
        c = challenge_of(r)
        assert r.status_code == 401 and c["error"] == '"invalid_token"' and why in c["error_description"]
        assert c["resource_metadata"] == f'"{meta}"'
    used.append(issuer.token(url, scope=SCOPE))
    r = client.post(url + f"?access_token={used[-1]}", headers=session_headers(version=None), json=ping)
    assert r.status_code == 401 and "query string" in challenge_of(r)["error_description"]
    r = client.post(url, headers={**session_headers(version=None), **bearer(issuer.token(url, scope="other"))},
                    json=ping)
    c = challenge_of(r)
    assert r.status_code == 403 and c["error"] == '"insufficient_scope"' and c["scope"] == f'"{SCOPE}"'
    body = r.json()
    assert body["error"]["code"] == -32600 and "mcp:tools" in body["error"]["message"]
    output = secured.output()
    assert not any(t in output or t.split(".")[2] in output for t in used)  # tokens never reach the logs


def test_a_tool_can_need_a_scope_of_its_own(secured, issuer, client):
    url = secured.url
    token = issuer.token(url, scope=SCOPE)
    sid = init(client, url, token)
    r, _ = rpc(client, url, sid, token, 1, "tools/call", {"name": "write_file", "arguments": {"name": "a"}})
    c = challenge_of(r)
    assert r.status_code == 403 and c["error"] == '"insufficient_scope"'
    assert c["scope"] == f'"{SCOPE} files:write"'  # every scope the operation needs, in one challenge
    broader = issuer.token(url, scope=f"{SCOPE} files")  # files implies files:write
    sid = init(client, url, broader)
    r, msg = rpc(client, url, sid, broader, 2, "tools/call", {"name": "write_file", "arguments": {"name": "a"}})
    assert msg["result"]["content"][0]["text"] == "wrote a"
    r, msg = rpc(client, url, sid, broader, 3, "tools/call", {"name": "whoami", "arguments": {}})
    assert msg["result"]["content"][0]["text"] == \
        f"alice of {issuer.issuer} via client-of-alice; scopes: {SCOPE} files"


def test_a_session_belongs_to_its_principal(secured, issuer, client):
    url = secured.url
    alice, bob = issuer.token(url, scope=SCOPE), issuer.token(url, subject="bob", scope=SCOPE)
    sid = init(client, url, alice)
    r, msg = rpc(client, url, sid, alice, 1, "tools/call", {"name": "steps", "arguments": {"n": 2},
                                                             "_meta": {"progressToken": "p"}})
    first_event = [e.id for e in events(r.text.splitlines()) if e.id][0]
    r, _ = rpc(client, url, sid, bob, 2, "tools/call", {"name": "whoami", "arguments": {}})
    assert r.status_code == 404  # as if there were no such session
    resume = {**session_headers(sid), **bearer(bob), "accept": "text/event-stream", "last-event-id": first_event}
    assert client.get(url, headers=resume).status_code == 404  # nor its event log
    assert client.delete(url, headers={**session_headers(sid), **bearer(bob)}).status_code == 404
    r = client.post(url, headers={**session_headers(sid), **bearer(bob)},  # nor the answer to a question
                    json={"jsonrpc": "2.0", "id": 0, "result": {"action": "accept", "content": {}}})
    assert r.status_code == 404
    r, msg = rpc(client, url, sid, alice, 3, "tools/call", {"name": "whoami", "arguments": {}})
    assert msg["result"]["content"][0]["text"].startswith("alice")  # untouched for its owner


def test_the_http_sse_transport_binds_too(secured, issuer, client):
    base = secured.url.replace("/mcp", "")
    alice, bob = issuer.token(secured.url, scope=SCOPE), issuer.token(secured.url, subject="bob", scope=SCOPE)
    assert client.get(base + "/sse", headers={"accept": "text/event-stream"}).status_code == 401
    with client.stream("GET", base + "/sse", headers={"accept": "text/event-stream", **bearer(alice)}) as stream:
        endpoint = next(e for e in events(stream.iter_lines()) if e.data.startswith("/")).data
        post = {"content-type": "application/json"}
        r = client.post(base + endpoint, headers={**post, **bearer(bob)}, json={"jsonrpc": "2.0", "id": 1,
                                                                              "method": "ping"})
        assert r.status_code == 404
        r = client.post(base + endpoint, headers={**post, **bearer(alice)}, json={"jsonrpc": "2.0", "id": 1,
                                                                                "method": "ping"})
        assert r.status_code == 202


def test_the_stateless_era_binds_tasks_state_and_streams(secured, issuer, client):
    url = secured.url
    alice, bob = issuer.token(url, scope=SCOPE), issuer.token(url, subject="bob", scope=SCOPE)
    r, msg, _ = modern_call(client, url, 1, "tools/list", None, None, None, **bearer(alice))
    assert msg["result"]["cacheScope"] == "private"  # it may depend on who asked
    r, msg, _ = modern_call(client, url, 2, "tools/call", {"name": "slow", "arguments": {"seconds": 0.5}}, TASKS,
                            **bearer(alice))
    task_id = msg["result"]["taskId"]
    stream = listen(client, url, "l", {"taskIds": [task_id]}, TASKS, **bearer(bob))
    try:
        r, msg, _ = modern_call(client, url, 3, "tasks/get", {"taskId": task_id}, TASKS, **bearer(bob))
        assert msg["error"]["code"] == -32602  # another principal's task: unknown
        r, msg, _ = modern_call(client, url, 4, "tasks/cancel", {"taskId": task_id}, TASKS, **bearer(bob))
        assert msg["error"]["code"] == -32602
        time.sleep(0.8)
        r, msg, _ = modern_call(client, url, 5, "tasks/get", {"taskId": task_id}, TASKS, **bearer(alice))
        assert msg["result"]["status"] == "completed"
        assert msg["result"]["result"]["content"][0]["text"] == "done for alice"
    finally:
        stream.close()
    first = modern_call(client, url, 6, "tools/call", {"name": "ask_name", "arguments": {}}, TASKS,
                        **bearer(alice))[1]["result"]
    replay = {"name": "ask_name", "arguments": {}, "requestState": first["requestState"],
              "inputResponses": {"name": {"action": "accept", "content": {"name": "Mallory"}}}}
    r, msg, _ = modern_call(client, url, 7, "tools/call", replay, TASKS, **bearer(bob))
    assert msg["error"]["code"] == -32602 and "requestState" in msg["error"]["message"]  # bound to alice
    r, msg, _ = modern_call(client, url, 8, "tools/call", replay, TASKS, **bearer(alice))
    assert msg["result"]["content"][0]["text"] == "Hello, Mallory"


def test_a_listen_stream_hears_only_of_its_principals_tasks():
    from engine.actors.listen_hub import ListenHub
    from engine.protocol.jsonrpc import Message

    hub = ListenHub(1 << 20, 10)
    params = {"notifications": {"taskIds": ["t1"]}, "_meta": TASKS}
    mine = hub.listen(Message(jsonrpc="2.0", id=1, method="subscriptions/listen", params=params), owner="alice")
    theirs = hub.listen(Message(jsonrpc="2.0", id=2, method="subscriptions/listen", params=params), owner="bob")
    assert hub.announce_task("t1", {"taskId": "t1", "status": "completed"}, owner="alice") == 1
    assert mine.connection.queued > 0 and theirs.connection.queued == 0


def test_the_python_sdk_client_sends_its_bearer_token(secured, issuer):
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    token = issuer.token(secured.url, subject="sdk-user", scope=SCOPE)

    async def body() -> str:
        with anyio.fail_after(30):
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=15) as http:
                async with streamable_http_client(secured.url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        result = await session.call_tool("whoami", {})
                        return result.content[0].text

    assert anyio.run(body).startswith("sdk-user of ")


@pytest.mark.peers
@pytest.mark.parametrize("transport", ["http-only", "sse-only"])
def test_mcp_remote_with_a_static_authorization_header(secured, issuer, node, tmp_path, transport):
    from test_peers_mcp_remote import StdioPeer

    token = issuer.token(secured.url, subject="proxied", scope=SCOPE)
    url = secured.url if transport == "http-only" else secured.url.replace("/mcp", "/sse")
    peer = StdioPeer(node, url, tmp_path, transport, extra=["--header", f"Authorization: Bearer {token}"])
    try:
        init_reply, _ = peer.request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                       "clientInfo": {"name": "p", "version": "0"}}, timeout=30)
        assert init_reply["result"]["serverInfo"]["name"] == "secured"
        peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        reply, _ = peer.request(2, "tools/call", {"name": "whoami", "arguments": {}})
        assert reply["result"]["content"][0]["text"].startswith("proxied of ")
    finally:
        peer.kill()


def test_a_verifier_of_your_own_for_opaque_tokens():
    """The verifier is a port: an app under any ASGI server can check opaque tokens (say,
    by RFC 7662 introspection) and get the same challenges and binding."""
    import engine
    from engine.actors.settings import AuthSettings
    from tests.auth_app import app as secured_app

    class Introspection:
        async def verify(self, token: str) -> engine.Principal:
            if token != "opaque-123":
                raise engine.InvalidToken("the token is not active")
            return engine.Principal(issuer="https://as.example", subject="carol", scopes=(SCOPE,))

    asgi = engine.asgi_app(secured_app, auth=AuthSettings(issuer="https://as.example", scopes=(SCOPE,)),
                           verifier=Introspection())

    async def go() -> None:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            r = await c.post("/mcp", headers={**session_headers(version=None), **bearer("nope")}, json=ping)
            assert r.status_code == 401 and "not active" in r.headers["www-authenticate"]
            r = await c.post("/mcp", headers={**session_headers(version=None), **bearer("opaque-123")}, json={
                "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
            assert r.status_code == 200
            meta = await c.get("/.well-known/oauth-protected-resource/mcp")
            assert meta.json()["authorization_servers"] == ["https://as.example"]
            assert meta.json()["resource"] == "http://127.0.0.1:8000/mcp"

    asyncio.run(go())


def test_health_endpoints_need_no_token(secured, client):
    base = secured.url.removesuffix("/mcp")
    assert client.get(base + "/healthz").status_code == 200
    assert client.get(base + "/readyz").text == "ok\n"


def test_a_tokenless_request_meets_401_before_any_other_rule(secured, client):
    """Whatever else is wrong with it (no session id, a bad body, the wrong Accept or Content-Type,
    a method the endpoint lacks), a request without a token hears 401 and the challenge first,
    on every endpoint and method, in both eras. Preflights and the metadata stay public."""
    base = secured.url.removesuffix("/mcp")
    meta = f'"{base}/.well-known/oauth-protected-resource/mcp"'
    modern = {"mcp-protocol-version": "2026-07-28", "content-type": "application/json",
              "accept": "application/json, text/event-stream", "mcp-method": "tools/list"}
    cases = [
        ("GET", "/mcp", {}, b""),  # no Mcp-Session-Id, no Accept
        ("GET", "/mcp", {"accept": "application/json"}, b""),  # 406 without authorization
        ("GET", "/mcp", {"accept": "text/event-stream", "mcp-session-id": "nope"}, b""),  # 404
        ("DELETE", "/mcp", {}, b""),
        ("DELETE", "/mcp", {"mcp-session-id": "nope", "mcp-protocol-version": "1999-01-01"}, b""),
        ("PUT", "/mcp", {}, b""),  # 405
        ("POST", "/mcp", {"content-type": "text/plain"}, b"hello"),  # 415
        ("POST", "/mcp", {"content-type": "application/json", "accept": "application/json, text/event-stream"},
         b"{not json"),  # 400
        ("POST", "/mcp", {"content-type": "application/json", "accept": "application/json, text/event-stream"},
         b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),  # no session: 400
        ("POST", "/mcp", modern, b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'),  # no _meta
        ("GET", "/sse", {"accept": "application/json"}, b""),
        ("POST", "/sse", {}, b""),
        ("POST", "/messages", {"content-type": "application/json"}, b"{}"),  # no sessionId
        ("GET", "/messages", {}, b""),
    ]
    for method, path, extra, body in cases:
        r = client.request(method, base + path, headers=extra, content=body)
        assert r.status_code == 401, (method, path, extra, r.status_code, r.text)
        assert challenge_of(r)["resource_metadata"] == meta, (method, path, r.headers)
    preflight = client.options(base + "/mcp", headers={"origin": "http://localhost", "access-control-request-method": "POST"})
    assert preflight.status_code == 204
    assert client.get(base + "/.well-known/oauth-protected-resource/mcp").status_code == 200
    assert client.get(base + "/elsewhere").status_code == 404  # not ours at all: no challenge
