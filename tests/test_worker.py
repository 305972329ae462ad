"""The Cloudflare tier: the Worker and its Durable Objects under the real runtime.

Each fixture vendors the Worker's packages (worker/vendor.sh), then starts
``npx wrangler dev --ip 127.0.0.1 --port P`` in its own process group with its own state
folder (--persist-to), and kills the group afterwards (``bench/wrangler.py``, which the
bench's Worker scenario shares). Without internet, workerd cannot download its Python
runtime, so when ../shared/tools/workerd-offline/setup exists its exports are applied first.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench import wrangler
from bench.wrangler import Wrangler
from conftest import NODE_MODULES, ROOT
from engine.actors import storage_contract
from sse_client import call, events, headers, initialize, long_task_until, resume
from test_conformance import SUITES, check_suite

SECRET = "test-secret"

pytestmark = pytest.mark.worker


def _require_wrangler() -> None:
    if not (NODE_MODULES / "wrangler").exists():
        message = "wrangler is not installed: run `npm install` in the project root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


_vendored: dict = {}


USER_MODULE = ROOT / "python_modules" / "users_own_module.py"


def vendor() -> None:
    if not _vendored:
        USER_MODULE.parent.mkdir(exist_ok=True)
        USER_MODULE.write_text("MINE = True\n")  # a module of the user's own, vendor.sh must keep it
        wrangler.vendor()
        _vendored["done"] = True


def test_vendoring_keeps_the_users_own_modules_and_secrets_stay_out_of_git():
    _require_wrangler()
    vendor()
    assert USER_MODULE.exists() and (ROOT / "python_modules" / "engine" / "__init__.py").exists()
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dev.vars"], cwd=ROOT)
    assert ignored.returncode == 0


def _start(app: str, secret: str = SECRET, variables: dict | None = None):
    _require_wrangler()
    vendor()
    state = tempfile.mkdtemp(prefix="mcp-actors-wrangler-")
    server = Wrangler(app, state, secret, variables)
    return server



@pytest.fixture(scope="module")
def worker_demo():
    server = _start("engine.demo:app")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker_everything():
    server = _start("examples.everything:app", variables={"LOG_LEVEL": "info"})
    yield server
    server.stop()


# -- the official conformance suite ------------------------------------------------------------


@pytest.mark.parametrize("suite", list(SUITES))
def test_conformance_under_workerd(worker_everything, node, suite, tmp_path):
    """All four runs against one Worker: both eras on one endpoint, as locally."""
    check_suite(node, worker_everything.url.replace("127.0.0.1", "localhost"), suite, tmp_path)


# -- the official Python SDK client ---------------------------------------------------------------


def test_python_sdk_client_under_workerd(worker_demo):
    import anyio
    import mcp.types as types
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    progress: list = []

    async def sampling(ctx, params):
        return types.CreateMessageResult(role="assistant", model="m", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text="from the edge"))

    async def on_progress(p, total, message):
        progress.append((p, total))

    async def body():
        with anyio.fail_after(60):
            async with streamable_http_client(worker_demo.url) as (read, write):
                async with ClientSession(read, write, sampling_callback=sampling, read_timeout_seconds=30) as s:
                    init = await s.initialize()
                    assert init.server_info.name == "mcp-actors-demo"
                    assert (await s.call_tool("echo", {"text": "edge"})).content[0].text == "edge"
                    r = await s.call_tool("long_task", {"steps": 3, "interval_s": 0.1}, progress_callback=on_progress)
                    assert "finished 3 steps" in r.content[0].text
                    assert (await s.call_tool("ask_llm", {"question": "q"})).content[0].text == "from the edge"
                    assert (await s.read_resource("demo://greeting/Edge")).contents[0].text == "Hello, Edge!"

    anyio.run(body)
    assert progress == [(1, 3), (2, 3), (3, 3)]


def test_resume_with_last_event_id_under_workerd(worker_demo):
    url = worker_demo.url
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, url)
        seen = long_task_until(c, url, sid, 1, steps=5, interval=0.2, token="edge", progress=2)
        rest = resume(c, url, sid, seen[-1].id)
    n = int(seen[-1].id.split(":")[1])
    assert [e.id for e in rest] == [f"1:{i}" for i in range(n + 1, n + 5)]
    assert [e.message["params"]["progress"] for e in rest[:-1]] == [3, 4, 5]
    assert "finished 5 steps" in rest[-1].message["result"]["content"][0]["text"]


# -- sessions: signed ids, DELETE, restart -----------------------------------------------------------


def test_forged_and_deleted_sessions_get_404(worker_demo):
    url = worker_demo.url
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, url)
        assert "." in sid and all(0x21 <= ord(ch) <= 0x7E for ch in sid)
        forged = sid[:-3] + ("AAA" if not sid.endswith("AAA") else "BBB")
        r = c.post(url, headers=headers(forged), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 404 and r.json()["error"]["code"] == -32001
        assert c.delete(url, headers=headers(sid)).status_code == 204
        r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert r.status_code == 404 and r.json()["error"]["code"] == -32001
        assert c.delete(url, headers=headers(sid)).status_code == 404
        # the shared HTTP rules answer at the Worker too
        assert c.post(url, headers={**headers(sid), "accept": "application/json"}, json={}).status_code == 406
        assert c.put(url, headers=headers(sid)).status_code == 405
        r = c.post(url, headers={**headers(None), "origin": "http://evil.example.com"},
                   json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 403


def test_session_survives_a_restart_of_wrangler_dev():
    server = _start("engine.demo:app")
    try:
        with httpx.Client(timeout=30) as c:
            sid = initialize(c, server.url)
            evs = call(c, server.url, sid, 1, "tools/call", {"name": "long_task",
                                                            "arguments": {"steps": 2, "interval_s": 0.05}})
            assert "finished 2 steps" in evs[-1].message["result"]["content"][0]["text"]
            server.restart()
            evs = call(c, server.url, sid, 2, "tools/call", {"name": "echo", "arguments": {"text": "still here"}})
            assert evs[-1].message["result"]["content"] == [{"type": "text", "text": "still here"}]
            # the stream of the call before the restart is still resumable
            replay = resume(c, server.url, sid, "1:1")
            assert "finished 2 steps" in replay[-1].message["result"]["content"][0]["text"]
    finally:
        server.stop()


def test_legacy_sse_through_the_worker(worker_demo):
    sse_url = worker_demo.url.replace("/mcp", "/sse")
    got: list = []
    with httpx.Client(timeout=30) as c:
        with c.stream("GET", sse_url, headers={"accept": "text/event-stream"}) as r:
            assert r.headers["x-accel-buffering"] == "no"  # the same front as locally
            lines = r.iter_lines()
            assert next(lines) == "event: endpoint"
            path = next(lines)[len("data: "):]
            messages = sse_url.replace("/sse", path)

            def send():
                c2 = httpx.Client(timeout=30)
                c2.post(messages, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
                c2.post(messages, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                        "params": {"name": "echo", "arguments": {"text": "legacy edge"}}})
                c2.close()

            t = threading.Thread(target=send)
            t.start()
            for ev in events(lines):
                if ev.message:
                    got.append(ev.message)
                    if len(got) == 2:
                        break
            t.join(30)
    assert got[0]["id"] == 0 and got[1]["result"]["content"][0]["text"] == "legacy edge"


# -- the storage contract, inside a Durable Object -------------------------------------------------


@pytest.mark.parametrize("check", list(storage_contract.CHECKS))
def test_storage_contract_in_a_durable_object(worker_demo, check):
    r = httpx.post(worker_demo.url.replace("/mcp", f"/__contract/{check}"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"check": check, "ok": True}


# -- hostile input at the edge ---------------------------------------------------------------------


def _session_objects(state_dir: str) -> set[str]:
    folder = Path(state_dir) / "v3" / "do" / "mcp-actors-SessionObject"
    return {p.name for p in folder.glob("*.sqlite") if p.name != "metadata.sqlite"} if folder.exists() else set()


def test_without_a_secret_guessed_ids_create_no_durable_object():
    server = _start("engine.demo:app", secret="")
    try:
        with httpx.Client(timeout=30) as c:
            sid = initialize(c, server.url)  # a real session (and the key's object) exist now
            assert "." in sid
            before = _session_objects(server.state_dir)
            for i in range(20):
                r = c.post(server.url, headers=headers(f"guess-{i}.AAAA"), json={"jsonrpc": "2.0", "id": 1,
                                                                                 "method": "ping"})
                assert r.status_code == 404 and r.json()["error"]["code"] == -32001
            assert _session_objects(server.state_dir) == before
            r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
            assert r.status_code == 200
        server.restart()  # the generated key is kept: the session's id still checks out
        with httpx.Client(timeout=30) as c:
            r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 3, "method": "ping"})
            assert r.status_code == 200
    finally:
        server.stop()


def test_the_same_limits_apply_at_the_edge(worker_demo):
    url = worker_demo.url
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, url)
        r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "t"}, "_meta": {"progressToken": "p" * 5000}}})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32602
        r = c.post(url, headers=headers(sid), content='{"a":' * 100_000 + "1" + "}" * 100_000)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32600
        r = c.post(url, headers={**headers(sid), **{f"x-h{i}": "1" for i in range(150)}},
                   json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert r.status_code == 431
        r = c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        tools = [t["name"] for e in events(r.text.splitlines()) if e.message for t in e.message["result"]["tools"]]
        assert "echo" in tools and "slow_sum" not in tools  # no threads in Pyodide: not offered


# -- the stateless era at the edge ---------------------------------------------------------------


def test_2026_requests_are_served_without_a_durable_object(worker_everything):
    """A 2026-07-28 request needs no durable state: the Worker answers it itself (only the
    listen hub, and the signing key's object, live in Durable Objects)."""
    from test_modern import ALICE, ask_name, call

    url = worker_everything.url
    with httpx.Client(timeout=30) as c:
        call(c, url, 1, "tools/list")  # warm: the key's object exists from here on
        before = _session_objects(worker_everything.state_dir)
        _, msg, _ = call(c, url, 2, "tools/call", {"name": "test_simple_text", "arguments": {}})
        assert msg["result"]["content"][0]["text"] == "This is a simple text response for testing."
        first = ask_name(c, url, 3)["result"]
        done = ask_name(c, url, 4, ALICE, first["requestState"])["result"]
        assert done["content"][0]["text"] == "Hello, Alice!"
        assert _session_objects(worker_everything.state_dir) == before


def test_python_sdk_2026_client_under_workerd(worker_everything):
    import anyio
    import mcp.types as types
    from mcp import Client

    async def on_elicit(context, params):
        return types.ElicitResult(action="accept", content={"name": "Edge"})

    async def body():
        with anyio.fail_after(60):
            async with Client(worker_everything.url, elicitation_callback=on_elicit) as client:
                assert client.protocol_version == "2026-07-28"
                result = await client.call_tool("test_input_required_result_elicitation", {})
                assert result.content[0].text == "Hello, Edge!"
                async with client.listen(tools_list_changed=True) as subscription:
                    await client.call_tool("test_trigger_tool_change", {})
                    async for event in subscription:
                        assert type(event).__name__ == "ToolsListChanged"
                        return "heard"
        return "not heard"

    assert anyio.run(body) == "heard"


# -- tasks: a Durable Object each --------------------------------------------------------------------


def test_typescript_sdk_runs_2025_tasks_under_workerd(worker_everything, node):
    """The task's object and its session's object talk: progress and status notifications
    go to the session's streams, and the elicitation inside the task reaches the client."""
    from test_peers_ts import check_tasks_run, run_tasks_driver

    check_tasks_run(run_tasks_driver(node, worker_everything.url))


def test_tasks_outlive_their_requests_and_a_restart_under_workerd():
    from modern_client import listen
    from test_tasks import TASKS, RestartCase, session_call, start_task

    server = _start("engine.demo:app")
    try:
        with httpx.Client(timeout=30) as c:
            url = server.url
            followed = start_task(c, url, "long_task", {"steps": 6, "interval_s": 0.5})
            stream = listen(c, url, "follow", {"taskIds": [followed["taskId"]]}, TASKS)
            try:  # the task runs on for seconds after its request, and the hub hears of it
                lines = events(stream.iter_lines())
                assert next(lines).message["method"] == "notifications/subscriptions/acknowledged"
                while (note := next(lines).message)["params"]["status"] != "completed":
                    assert note["method"] == "notifications/tasks"
                assert "finished 6 steps" in note["params"]["result"]["content"][0]["text"]
            finally:
                stream.close()
            case = RestartCase(c, url, followed["taskId"], "finished 6 steps")
            server.restart()
            url = server.url  # the Worker's address changes with each start
            case.check(c, url)
            forged = session_call(c, url, case.sid, 3, "tasks/get", {"taskId": case.old[:-3] + "AAA"})["error"]
            assert forged["code"] == -32602  # a forged id is unknown, without any object addressed
    finally:
        server.stop()


# -- authorization at the edge ------------------------------------------------------------------------


def test_authorization_under_workerd(tmp_path):
    """The same resource server in the Worker: the metadata, the challenges, tokens verified
    by WebCrypto (RS256, ES256, EdDSA), scopes per tool, and sessions and tasks bound to
    their principal, before any Durable Object is addressed for a refused request."""
    import shutil

    from auth_server import AuthServer
    from test_auth import SCOPE, TASKS, bearer, challenge_of, init, rpc
    from modern_client import call as modern_call

    _require_wrangler()
    vendor()
    app_module = ROOT / "python_modules" / "auth_app.py"
    shutil.copy(ROOT / "tests" / "auth_app.py", app_module)
    issuer = AuthServer()
    server = Wrangler("auth_app:app", tempfile.mkdtemp(prefix="mcp-actors-wrangler-"), SECRET,
                      variables={"AUTH_ISSUER": issuer.issuer, "AUTH_SCOPES": SCOPE})
    try:
        url = server.url
        with httpx.Client(timeout=30) as c:
            meta = c.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
            assert meta.status_code == 200 and meta.json()["resource"] == url
            assert meta.json()["authorization_servers"] == [issuer.issuer]
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            r = c.post(url, headers=headers(), json=ping)
            assert r.status_code == 401 and "error" not in challenge_of(r)
            # The token before every other rule, at the edge too (each of these breaks another one).
            for method, extra, body in (("GET", {}, b""), ("DELETE", {}, b""), ("PUT", {}, b""),
                                        ("POST", {"content-type": "text/plain"}, b"x")):
                r = c.request(method, url, headers=extra, content=body)
                assert r.status_code == 401 and "resource_metadata" in challenge_of(r), (method, r.text)
            r = c.post(url, headers={**headers(), **bearer(issuer.token(url, exp=int(time.time()) - 600))}, json=ping)
            assert r.status_code == 401 and challenge_of(r)["error"] == '"invalid_token"'
            r = c.post(url, headers={**headers(), **bearer(issuer.token(url, scope="other"))}, json=ping)
            assert r.status_code == 403 and challenge_of(r)["scope"] == f'"{SCOPE}"'
            for kid in ("rs256-1", "es256-1", "eddsa-1"):  # every algorithm, by WebCrypto
                token = issuer.token(url, scope=SCOPE, kid=kid)
                sid = init(c, url, token)
                _, msg = rpc(c, url, sid, token, 1, "tools/call", {"name": "whoami", "arguments": {}})
                assert msg["result"]["content"][0]["text"] == \
                    f"alice of {issuer.issuer} via client-of-alice; scopes: {SCOPE}", kid
            r, _ = rpc(c, url, sid, token, 2, "tools/call", {"name": "write_file", "arguments": {"name": "x"}})
            assert r.status_code == 403 and challenge_of(r)["scope"] == f'"{SCOPE} files:write"'
            bob = issuer.token(url, subject="bob", scope=SCOPE)
            r, _ = rpc(c, url, sid, bob, 3, "tools/call", {"name": "whoami", "arguments": {}})
            assert r.status_code == 404  # alice's session, as if it did not exist
            _, msg, _ = modern_call(c, url, 4, "tools/call", {"name": "slow", "arguments": {"seconds": 0}}, TASKS,
                                    **bearer(token))
            task_id = msg["result"]["taskId"]
            _, msg, _ = modern_call(c, url, 5, "tasks/get", {"taskId": task_id}, TASKS, **bearer(bob))
            assert msg["error"]["code"] == -32602
            deadline = time.monotonic() + 20
            while True:
                _, msg, _ = modern_call(c, url, 6, "tasks/get", {"taskId": task_id}, TASKS, **bearer(token))
                if msg["result"]["status"] == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert msg["result"]["result"]["content"][0]["text"] == "done for alice"
        log = server.log()
        assert token not in log and bob not in log and token.split(".")[2] not in log  # never logged
    finally:
        server.stop()
        issuer.close()
        app_module.unlink(missing_ok=True)


# -- structured logs -----------------------------------------------------------------------------


def test_the_worker_and_its_objects_write_json_log_lines_naming_the_request(worker_everything):
    """Workers Logs indexes console.log JSON: a tool's log line, written in the session's Durable
    Object, is one JSON object naming the session, the request, the method and the trace its
    request's _meta named."""
    import json

    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    url = worker_everything.url
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, url)
        evs = call(c, url, sid, "logged-1", "tools/call", {
            "name": "test_error_handling", "arguments": {},
            "_meta": {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}})
        assert evs[-1].message["result"]["isError"] is True
    deadline = time.monotonic() + 15
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        for line in worker_everything.log().splitlines():
            start = line.find("{")
            if start < 0 or "test_error_handling" not in line:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("request_id") == "logged-1":
                found.append(record)
        time.sleep(0.2)
    assert found, worker_everything.log()[-3000:]
    record = found[0]
    assert record["level"] == "info" and record["logger"] == "engine" and record["time"].endswith("Z")
    assert record["session_id"] == sid and record["method"] == "tools/call" and record["trace_id"] == trace_id
    assert "intentionally returns an error" in record["message"]


# -- the bundle's budget -------------------------------------------------------------------------


def test_the_engine_bundle_stays_within_its_budget(capsys):
    """What wrangler would upload for the engine's Worker, against bench/bundle.py's budget."""
    from bench import bundle

    _require_wrangler()
    vendor()
    line = bundle.check("engine")
    with capsys.disabled():
        print(f"\n{line}")


def test_a_bundle_past_its_budget_fails_the_guard(tmp_path):
    """The guard fails, naming the sizes, once the bundle grows past its budget: here the
    Worker's folder with 1.5 MiB of incompressible bytes added to python_modules/."""
    import shutil

    from bench import bundle

    _require_wrangler()
    vendor()
    shutil.copy(ROOT / "wrangler.toml", tmp_path / "wrangler.toml")
    shutil.copytree(ROOT / "worker", tmp_path / "worker", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "python_modules", tmp_path / "python_modules", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "python_modules" / "ballast.py").write_text(f"BALLAST = {os.urandom(1536 * 1024).hex()!r}\n")
    with pytest.raises(bundle.OverBudget, match=r"engine bundle: .* MiB compressed \(budget 1 MiB compressed\): over"):
        bundle.check("engine", tmp_path)


def test_a_refused_request_whose_body_comes_late_keeps_its_connection(worker_demo):
    """The Worker refuses a POST (406) from its head alone; its body arrives a moment later.
    The connection must still serve the client's next request: workerd closes a connection
    whose request body went unread, so the Worker reads it (within the body limit) first."""
    import socket

    host, port = worker_demo.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
                  "Content-Type: application/json\r\nMcp-Protocol-Version: 2025-11-25\r\nContent-Length: 2\r\n\r\n"
                  .encode())
        time.sleep(0.2)  # the Worker has answered from the head by now
        s.sendall(b"{}")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 406"), first[:200]
        while b'"jsonrpc"' not in first or not first.rstrip().endswith(b"}"):
            first += s.recv(65536)
        s.sendall(f"PUT /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode())
        second = s.recv(65536)
        assert second.startswith(b"HTTP/1.1 405"), second[:200]
