"""Durable actors: hibernation, expiry, alarms, and a real kill -9 in the middle of a call."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import msgspec
import pytest

from conftest import ROOT, free_port
from engine.actors.session_actor import Lifetimes, SessionActor
from engine.app.context import ClientError
from engine.demo import app as demo_app
from engine.protocol.jsonrpc import decode, encode
from engine.local.runtime import LocalRuntime
from engine.actors.sqlite_store import SqliteBackend
from sse_client import events, headers, initialize, long_task_until, resume


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def msg(body: dict):
    return decode(encode(body))


INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
                   "clientInfo": {"name": "t", "version": "1"}}}


def snapshot(actor) -> dict:
    """Everything a session knows that decides its behaviour, in comparable form.

    A stream answered in the tick that opened it keeps no record (the hot path writes only
    its event), so its request id and finish time are not restored: neither matters once
    it is finished and delivered, and its retention clock restarts at wake (it is kept
    longer, never shorter). Recorded streams compare in full.
    """
    streams = {}
    for sid, s in actor.log.streams.items():
        full = (s.request_id, s.finished_at) if s.recorded else ()
        streams[sid] = (s.counter, s.first, s.size, s.finished, s.delivered, s.recorded) + full
    return {
        "state": msgspec.to_builtins(actor.session.state),
        "streams": streams,
        "replays": {sid: actor.log.replay(f"{sid}:0")[1] for sid in actor.log.streams},
        "next_stream_floor": actor.log.next_stream > max(actor.log.streams),
        "events": actor.storage.list("e/"),
    }


def test_hibernate_and_wake_with_identical_state(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        runtime = LocalRuntime(demo_app, backend=backend, lifetimes=Lifetimes(idle_evict=10))
        actor = runtime.create()
        sid = actor.session.id
        await actor.post(msg(INIT))
        await actor.post(msg({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        await actor.post(msg({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "error"}}))
        await actor.post(msg({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe",
                              "params": {"uri": "demo://notes"}}))
        await actor.post(msg({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                              "params": {"name": "echo", "arguments": {"text": "before"}}}))
        slow = await actor.post(msg({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                     "params": {"name": "long_task", "arguments": {"steps": 1, "interval_s": 0.01}}}))
        while await slow.connection.next() is not None:  # a recorded stream, finished and delivered
            pass
        slow.connection.detach()
        actor.announce("notifications/resources/updated", {"uri": "demo://notes"}, "demo://notes")
        await backend.flush()
        before = snapshot(actor)
        assert not runtime.evict_idle(time.time())  # not idle yet
        assert runtime.evict_idle(time.time() + 11) == 1
        assert sid not in runtime.actors
        woken = await runtime.get(sid)
        assert woken is not actor
        # Hibernation writes down the last activity (expiry counts from it); all else is identical.
        assert woken.session.state.last_seen == actor.last_active
        before["state"]["last_seen"] = actor.last_active
        assert snapshot(woken) == before
        reply = await woken.post(msg({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                      "params": {"name": "echo", "arguments": {"text": "after"}}}))
        assert b'"text":"after"' in reply.body
        assert await runtime.get("no-such-session") is None
        backend.close()
    asyncio.run(go())


def test_expiry_by_alarm_and_alarm_retries(tmp_path, monkeypatch):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        runtime = LocalRuntime(demo_app, backend=backend, lifetimes=Lifetimes(session_ttl=100, idle_evict=1))
        keep, drop, unused = runtime.create(), runtime.create(), runtime.create()
        for actor in (keep, drop, unused):
            await actor.post(msg(INIT))
        t0 = time.time()
        for actor in (keep, drop):
            await actor.post(msg(INITIALIZED))
        # a session whose handshake is not complete expires soon (Lifetimes.handshake_ttl);
        # the others' alarms find their handshake done and re-arm for the full TTL
        assert unused.storage.get_alarm() == pytest.approx(t0 + 60, abs=2)
        await runtime.run_alarms(t0 + 61)
        assert runtime.expired == 1 and await runtime.get(unused.session.id) is None
        runtime.expired = 0
        assert keep.storage.get_alarm() == pytest.approx(t0 + 100, abs=2)
        keep.last_active = t0 + 60  # keep was used later on
        runtime.evict_idle(t0 + 70)  # both hibernate; the alarm must wake them
        assert not runtime.actors
        await runtime.run_alarms(t0 + 101)
        assert runtime.expired == 1
        assert await runtime.get(drop.session.id) is None and not backend.exists(drop.session.id, "meta")
        woken = await runtime.get(keep.session.id)
        assert woken is not None and woken.storage.get_alarm() == pytest.approx(t0 + 160, abs=2)

        async def broken(self, now=None):
            raise RuntimeError("alarm failed")

        monkeypatch.setattr(SessionActor, "alarm", broken)
        await runtime.run_alarms(t0 + 161)
        assert woken.storage.get_alarm() == pytest.approx(t0 + 162, abs=0.01)  # retried, 1 s backoff
        await runtime.run_alarms(t0 + 163)
        assert woken.storage.get_alarm() == pytest.approx(t0 + 165, abs=0.01)  # then 2 s
        backend.close()
    asyncio.run(go())


def test_requests_to_the_client_time_out_with_an_error():
    async def go():
        runtime = LocalRuntime(demo_app)
        actor = runtime.create()
        await actor.post(msg(INIT))
        stream = actor.log.open(None)
        with pytest.raises(ClientError) as info:
            await actor.request_client(stream, "sampling/createMessage", {"messages": [], "maxTokens": 1}, 0.05)
        assert info.value.code == -32001 and "did not answer" in info.value.message
        assert not actor.waiters and actor.storage.list("p/") == []
    asyncio.run(go())


def test_short_ttl_session_expires_then_404(start_server):
    server = start_server(None, "--session-ttl", "1", "--idle-evict", "0.3")
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, server.url)
        r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 200
        other = initialize(c, server.url)
        for _ in range(5):  # keep the other session busy while the first one stays quiet
            time.sleep(0.5)
            assert c.post(server.url, headers=headers(other),
                          json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 200
        r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert r.status_code == 404 and r.json()["error"]["code"] == -32001


def test_idle_sessions_hibernate_and_keep_working(start_server):
    server = start_server(None, "--idle-evict", "0.2")
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, server.url)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "long_task", "arguments": {"steps": 2, "interval_s": 0.05}}}
        with c.stream("POST", server.url, json=body, headers=headers(sid)) as r:
            first = list(events(r.iter_lines()))
        time.sleep(1.0)  # hibernated by now
        replay = resume(c, server.url, sid, first[0].id)
        assert [e.data for e in replay] == [e.data for e in first[1:]]
        r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                            "params": {"name": "echo", "arguments": {"text": "awake"}}})
        assert '"text":"awake"' in r.text


def test_many_sessions_in_parallel_never_cross(start_server):
    server = start_server(None)
    results: dict[str, list] = {}
    errors: list = []

    def run(n: int):
        try:
            with httpx.Client(timeout=20) as c:
                sid = initialize(c, server.url)
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "long_task", "arguments": {"steps": 3, "interval_s": 0.05},
                                   "_meta": {"progressToken": f"s{n}"}}}
                with c.stream("POST", server.url, json=body, headers=headers(sid)) as r:
                    results[f"s{n}"] = [e.message for e in events(r.iter_lines()) if e.message]
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 40
    for token, messages in results.items():
        progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
        assert [p["progressToken"] for p in progress] == [token] * 3
        assert [p["progress"] for p in progress] == [1, 2, 3]
        assert messages[-1]["id"] == 1 and "finished 3 steps" in messages[-1]["result"]["content"][0]["text"]


# -- crash safety ---------------------------------------------------------------------------------


def _serve(store: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", str(port), "--store", store],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("server did not start")


@pytest.fixture
def crashable(tmp_path):
    procs: list[subprocess.Popen] = []
    store = f"sqlite:{tmp_path}/state.db"

    def start():
        port = free_port()
        procs.append(_serve(store, port))
        return procs[-1], f"http://127.0.0.1:{port}/mcp"

    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def test_kill_9_mid_call_then_resume_with_raw_http(crashable):
    proc, url = crashable()
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        seen = long_task_until(c, url, sid, 1, steps=50, interval=0.05, token="crash", progress=3)
        time.sleep(0.3)  # a few more events are committed while nobody listens
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

        _, url2 = crashable()
        rest = resume(c, url2, sid, seen[-1].id)
        # Exactly the events after the last one seen: contiguous ids, progress counting on, no duplicates,
        # then the error that says the call died with the server.
        counters = [int(e.id.split(":")[1]) for e in rest]
        assert counters == list(range(int(seen[-1].id.split(":")[1]) + 1, counters[-1] + 1))
        progress = [e.message["params"]["progress"] for e in rest[:-1]]
        assert progress == list(range(4, 4 + len(progress))) and len(progress) >= 2
        final = rest[-1].message
        assert final["id"] == 1 and final["error"]["code"] == -32603 and "restarted" in final["error"]["message"]
        # The session lives on under the same id, and the same request id can be used again.
        r = c.post(url2, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                      "params": {"name": "echo", "arguments": {"text": "again"}}})
        assert r.status_code == 200 and '"text":"again"' in r.text
        # Resuming again gives the same ending: nothing is lost or repeated.
        again = resume(c, url2, sid, seen[-1].id)
        assert [e.data for e in again] == [e.data for e in rest]


def test_kill_9_mid_call_then_resume_with_the_python_sdk(crashable):
    import anyio
    import httpx2
    import mcp_types as types
    from mcp import ClientSession, MCPError
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.message import ClientMessageMetadata

    proc, url = crashable()
    tokens: list[str] = []
    holder: dict = {}

    async def on_token(token: str) -> None:
        tokens.append(token)

    async def first_half():
        async def on_response(response):
            if sid := response.headers.get("mcp-session-id"):
                holder["sid"] = sid

        async with httpx2.AsyncClient(timeout=10, event_hooks={"response": [on_response]}) as http:
            async with streamable_http_client(url, http_client=http, terminate_on_close=False) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    request = types.CallToolRequest(params=types.CallToolRequestParams(
                        name="long_task", arguments={"steps": 50, "interval_s": 0.05},
                        _meta={"progressToken": "sdk"}))
                    with anyio.move_on_after(0.6):
                        await session.send_request(request, types.CallToolResult,
                                                   metadata=ClientMessageMetadata(on_resumption_token_update=on_token))

    anyio.run(first_half)
    assert len(tokens) >= 3
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
    _, url2 = crashable()

    async def second_half():
        resumed: list[str] = []

        async def on_resumed(token: str) -> None:
            resumed.append(token)

        async with httpx2.AsyncClient(timeout=10, headers={"mcp-session-id": holder["sid"],
                                                            "mcp-protocol-version": "2025-11-25"}) as http:
            async with streamable_http_client(url2, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    request = types.CallToolRequest(params=types.CallToolRequestParams(
                        name="long_task", arguments={"steps": 50, "interval_s": 0.05},
                        _meta={"progressToken": "sdk"}))
                    with pytest.raises(MCPError) as info:
                        with anyio.fail_after(10):
                            await session.send_request(request, types.CallToolResult, metadata=ClientMessageMetadata(
                                resumption_token=tokens[-1], on_resumption_token_update=on_resumed))
                    assert info.value.code == -32603 and "restarted" in str(info.value)
                    result = await session.call_tool("echo", {"text": "alive"})
                    assert result.content[0].text == "alive"
        return resumed

    resumed = anyio.run(second_half)
    last = int(tokens[-1].split(":")[1])
    stream = tokens[-1].split(":")[0]
    assert resumed and all(t.split(":")[0] == stream for t in resumed)
    assert [int(t.split(":")[1]) for t in resumed] == list(range(last + 1, last + 1 + len(resumed)))


def test_bad_store_files_are_clear_errors_at_start(tmp_path):
    garbage = tmp_path / "bad.db"
    garbage.write_bytes(b"\x00garbage" * 512)
    blocked = tmp_path / "blocker"
    blocked.write_text("a file where a folder should be")
    for spec, words in ((f"sqlite:{garbage}", "not a usable mcp-actors store"),
                        (f"sqlite:{blocked}/x/state.db", "cannot create the folder"),
                        ("redis://nope", "use sqlite:PATH, memory or postgresql://"),
                        (f"sqlite:{tmp_path}/s.db?synchronous=extra", "?synchronous= normal or full"),
                        (f"postgresql://nobody@127.0.0.1:{free_port()}/mcp", "cannot connect to the database")):
        proc = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(free_port()), "--store", spec],
                              cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert proc.returncode != 0, spec
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
