"""Faults: nothing acknowledged lost, nothing wedged, one broken session never stops the others.

In-process (tests/inproc.py), so the store and the actors can be reached into: a SQLite
store that really fills up (``PRAGMA max_page_count``), a session record made unreadable,
actors sent to sleep while the app announces, a session deleted while it waits on its
client.
"""

from __future__ import annotations

import asyncio
import json
import time

import anyio
import pytest

from engine import App, Context
from engine.actors.session_actor import Lifetimes
from engine.actors.sqlite_store import SqliteBackend
from engine.actors.front import str_headers
from engine.demo import app as demo_app
from inproc import Harness, frames, messages

app = App("faults", "1.0")


@app.tool()
async def ask(ctx: Context) -> str:
    try:
        answer = await ctx.elicit("Name?", {"type": "object", "properties": {"name": {"type": "string"}}},
                                  timeout=30)
    finally:
        await ctx.info("the question is settled")  # user code reporting on its way out, even when cancelled
    return f"hello {answer.content}"


@app.tool()
async def ask_briefly(ctx: Context) -> str:
    try:
        await ctx.elicit("Quick?", {"type": "object", "properties": {}}, timeout=0.05)
    except Exception as exc:
        return f"gave up: {exc}"
    return "answered"


@app.tool()
async def wait(ctx: Context, seconds: float = 30) -> str:
    await asyncio.sleep(seconds)
    return "waited"


@app.tool()
async def close_then_finish(ctx: Context) -> str:
    await ctx.close_stream()
    await asyncio.sleep(0.05)
    return "finished"


@app.tool(thread=True)
def threaded_notes(ctx: Context) -> str:
    """A blocking tool that reports from its worker thread, both ways a user might."""
    anyio.from_thread.run(ctx.info, "from the thread, through anyio")
    asyncio.run(ctx.info("from the thread, in a loop of its own"))
    app.notify_resource_updated("faults://watched")
    return "threaded"


@app.resource("faults://watched")
def watched() -> str:
    return "w"


def run(coro):
    return asyncio.run(coro)


# -- the store fails to commit -------------------------------------------------------------------


def test_a_failed_commit_fails_its_requests_then_the_store_serves_again(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(demo_app, backend)
        a, b = await h.initialize(), await h.initialize()
        ok = await h.call(a, 1, "tools/call", {"name": "echo", "arguments": {"text": "before"}})
        assert messages(ok.body)[-1]["result"]["content"][0]["text"] == "before"
        pages = backend.db.execute("PRAGMA page_count").fetchone()[0]
        backend.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        failed = [await h.call(sid, 2, "tools/call", {"name": "echo", "arguments": {"text": "x" * 20000}})
                  for sid in (a, b)]
        for r in failed:
            assert r.status == 503 and str_headers(r.headers)["retry-after"] == "1"
            error = json.loads(r.body)
            assert error["id"] == 2 and error["error"]["code"] == -32802
            assert "not applied" in error["error"]["message"]
        assert not backend._in_tx  # the group was rolled back, not left open
        backend.db.execute("PRAGMA max_page_count = 1000000")  # the cause is gone
        for sid in (a, b):  # both sessions serve again, reloaded from what was kept
            r = await h.call(sid, 3, "tools/call", {"name": "echo", "arguments": {"text": "after"}})
            assert r.status == 200 and messages(r.body)[-1]["result"]["content"][0]["text"] == "after"
        replay = await h.get(a, "1:0")  # what was acknowledged before the fault is all there
        assert messages(replay.body)[-1]["result"]["content"][0]["text"] == "before"
        c = await h.initialize()
        assert (await h.call(c, 1, "ping")).status == 200
        backend.close()

    run(go())


def test_readyz_is_503_while_the_store_cannot_commit_and_200_once_it_can(tmp_path):
    """A balancer must stop sending traffic to a process whose disk is full, and send it again
    once it is not: with no traffic, the runtime's own probe finds out (a real commit)."""
    import httpx

    from engine.actors.settings import Settings
    from engine.local.asgi import McpAsgi
    from engine.local.runtime import LocalRuntime

    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        settings = Settings()
        settings.lifetimes = Lifetimes(idle_evict=0.1)  # the upkeep ticks every 50 ms
        asgi = McpAsgi(LocalRuntime(demo_app, settings.http, backend, settings.lifetimes), settings)
        await asgi.runtime.start()
        h = Harness(demo_app, backend)
        h.runtime = asgi.runtime
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://127.0.0.1:8000") as c:
            assert (await c.get("/readyz")).text == "ok\n"
            sid = await h.initialize()
            pages = backend.db.execute("PRAGMA page_count").fetchone()[0]
            backend.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
            r = await h.call(sid, 2, "tools/call", {"name": "echo", "arguments": {"text": "x" * 20000}})
            assert r.status == 503
            for _ in range(5):  # the probe keeps failing: still not ready
                ready = await c.get("/readyz")
                assert ready.status_code == 503, ready.text
                await asyncio.sleep(0.06)
            assert ready.text.startswith("not ready: the store cannot commit (") and "full" in ready.text
            assert (await c.get("/healthz")).status_code == 200  # alive all the same
            backend.db.execute("PRAGMA max_page_count = 1000000")  # the cause is gone; no request comes
            deadline = time.monotonic() + 5
            while (ready := await c.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert ready.status_code == 200 and ready.text == "ok\n"
            assert backend.namespace("__probe__").list("") == []  # the probe left nothing behind
            r = await h.call(sid, 3, "tools/call", {"name": "echo", "arguments": {"text": "after"}})
            assert r.status == 200
            asgi.runtime.close_connections()  # shutdown begins: unready at once
            assert (await c.get("/readyz")).text == "not ready: shutting down\n"
        await asgi.runtime.stop()
        backend.close()

    run(go())


def test_a_flusher_of_a_failed_group_hears_of_it_even_after_the_group_ended(tmp_path):
    """An SSE connection flushes when its pump wakes, which can be after the commit ran:
    bytes of a failed group must never go out as if they were committed."""
    from engine.protocol.storage import StoreUnavailable

    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        ns = backend.namespace("x")
        pages = backend.db.execute("PRAGMA page_count").fetchone()[0]
        backend.db.execute(f"PRAGMA max_page_count = {pages}")
        ns.put("k", b"v" * 50000)
        await asyncio.sleep(0.01)  # the group's commit runs (and fails) before anyone flushes
        with pytest.raises(StoreUnavailable):
            await ns.flush()
        backend.db.execute("PRAGMA max_page_count = 1000000")
        ns.put("k", b"v")
        await ns.flush()
        assert ns.get("k") == b"v"
        backend.close()

    run(go())


# -- one session cannot be loaded ----------------------------------------------------------------


def test_an_unreadable_session_is_isolated_and_the_others_go_on(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(demo_app, backend, Lifetimes(session_ttl=100, idle_evict=0))
        broken, other, expiring = await h.initialize(), await h.initialize(), await h.initialize()
        await asyncio.sleep(0.01)
        h.runtime.evict_idle(time.time() + 1)
        backend.namespace(broken).put("meta", b"{not json")
        await backend.flush()
        r = await h.call(broken, 1, "ping")
        assert r.status == 404 and json.loads(r.body)["error"]["code"] == -32001
        assert "cannot be read" in json.loads(r.body)["error"]["message"]
        assert (await h.call(other, 1, "ping")).status == 200
        # the broken session's alarm is due first; the expiring one's alarm must still run
        backend.namespace(broken).set_alarm(time.time() - 5)
        h.runtime.evict_idle(time.time() + 1)
        later = time.time() + 101
        await h.runtime.run_alarms(later)
        assert await h.runtime.get(expiring) is None and h.runtime.expired >= 1
        retry_at = backend.namespace(broken).get_alarm()
        assert retry_at is not None and retry_at >= later + 1  # backed off, not a hot loop
        backend.close()

    run(go())


# -- announcements reach sessions whose actors were asleep --------------------------------------


def test_a_session_asleep_when_the_app_announced_hears_it_on_resuming_its_get_stream():
    async def go():
        h = Harness(app, lifetimes=Lifetimes(idle_evict=0))
        sid = await h.initialize()
        assert (await h.call(sid, 1, "resources/subscribe", {"uri": "faults://watched"})).status == 200
        listen = await h.get(sid)
        primed = frames(listen.body)[0][0]
        listen.stream.detach()  # a blip: the client's GET stream drops
        h.runtime.evict_idle(time.time() + 1)
        assert sid not in h.runtime.actors  # the actor is asleep
        h.runtime.announce("notifications/resources/updated", {"uri": "faults://watched"}, "faults://watched")
        h.runtime.announce("notifications/tools/list_changed", None, None)
        h.runtime.announce("notifications/resources/updated", {"uri": "faults://other"}, "faults://other")
        resumed = await h.get(sid, primed)  # wakes the actor, which catches up first
        got = messages(resumed.body)
        assert [m["method"] for m in got] == ["notifications/resources/updated", "notifications/tools/list_changed"]
        assert got[0]["params"] == {"uri": "faults://watched"}
        resumed.stream.detach()
        h.runtime.evict_idle(time.time() + 1)
        again = await h.get(sid, frames(resumed.body)[-1][0])  # heard once, not again
        assert messages(again.body) == []

    run(go())


def test_a_session_that_slept_through_more_than_the_log_keeps_hears_a_summary():
    async def go():
        h = Harness(app, lifetimes=Lifetimes(idle_evict=0))
        h.runtime.announcements.keep = 3
        sid = await h.initialize()
        await h.call(sid, 1, "resources/subscribe", {"uri": "faults://watched"})
        h.runtime.evict_idle(time.time() + 1)
        for _ in range(5):
            h.runtime.announce("notifications/prompts/list_changed", None, None)
        listen = await h.get(sid)  # wakes the actor, which catches up onto its GET stream
        actor = h.runtime.actors[sid]
        stream = actor.log.get_stream
        stored = [f for _, f in actor.storage.list(stream.prefix) if f]
        sent = [json.loads(f.split(b"data: ", 1)[1]) for f in stored]
        methods = [m["method"] for m in sent]
        assert {"notifications/tools/list_changed", "notifications/resources/list_changed",
                "notifications/prompts/list_changed", "notifications/resources/updated"} <= set(methods)
        listen.stream.detach()

    run(go())


# -- requests to the client ---------------------------------------------------------------------


def test_delete_while_waiting_on_the_client_leaves_no_rows(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(app, backend)
        sid = await h.initialize({"elicitation": {}})
        r = await h.call(sid, 1, "tools/call", {"name": "ask", "arguments": {}})
        assert r.stream is not None
        await asyncio.sleep(0.01)
        assert backend.namespace(sid).list("p/")  # the request to the client is recorded
        assert (await h.request("DELETE", {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})).status == 204
        await asyncio.sleep(0.05)  # the cancelled handler unwinds
        await backend.flush()
        assert backend.db.execute("SELECT COUNT(*) FROM kv WHERE ns = ?", (sid,)).fetchone()[0] == 0
        assert backend.namespace(sid).get_alarm() is None
        backend.close()

    run(go())


def test_a_delete_is_committed_before_its_204(tmp_path):
    """The 204 is an acknowledgement: another reader of the store (a second process of a
    cluster, or this one after a crash) must already find the session gone."""
    import sqlite3

    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(demo_app, backend)
        sid = await h.initialize()
        await backend.flush()
        other = sqlite3.connect(tmp_path / "state.db")
        rows = "SELECT COUNT(*) FROM kv WHERE ns = ?"
        assert other.execute(rows, (sid,)).fetchone()[0] > 0
        end = {"mcp-protocol-version": "2025-11-25"}
        assert (await h.request("DELETE", {**end, "mcp-session-id": sid})).status == 204
        assert other.execute(rows, (sid,)).fetchone()[0] == 0  # no wait: already committed
        other.close()
        backend.close()

    run(go())


def test_a_request_to_the_client_that_times_out_is_cancelled_on_the_wire():
    async def go():
        h = Harness(app)
        sid = await h.initialize({"elicitation": {}})
        r = await h.call(sid, 1, "tools/call", {"name": "ask_briefly", "arguments": {}})
        got = messages(await h.drain(r))
        asked, cancelled, result = got
        assert asked["method"] == "elicitation/create"
        assert cancelled["method"] == "notifications/cancelled"
        assert cancelled["params"]["requestId"] == asked["id"] and "within" in cancelled["params"]["reason"]
        assert "gave up" in result["result"]["content"][0]["text"]
        assert h.runtime.actors[sid].storage.list("p/") == []

    run(go())


def test_after_a_restart_a_pending_question_is_called_off_and_its_request_ended(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(app, backend)
        sid = await h.initialize({"elicitation": {}})
        r = await h.call(sid, 7, "tools/call", {"name": "ask", "arguments": {}})
        first = messages(r.body) or messages(await r.stream.next())
        asked = first[0]
        await asyncio.sleep(0.01)
        h.runtime.actors[sid].closed = True  # as if the process died here: its handlers write nothing more
        await backend.flush()
        backend.db.close()  # the process dies: nothing more is written
        backend._release()
        backend2 = SqliteBackend(tmp_path / "state.db")
        h2 = Harness(app, backend2)
        resumed = await h2.get(sid, "1:0")
        got = messages(resumed.body)
        assert got[0] == asked
        assert got[1]["method"] == "notifications/cancelled" and got[1]["params"]["requestId"] == asked["id"]
        assert got[2]["id"] == 7 and got[2]["error"]["code"] == -32603 and "restarted" in got[2]["error"]["message"]
        assert backend2.namespace(sid).list("p/") == []
        backend2.close()

    run(go())


def test_a_delivered_stream_is_dropped_after_its_grace_by_the_alarm(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(demo_app, backend, Lifetimes(session_ttl=3600))
        sid = await h.initialize()
        r = await h.call(sid, 1, "tools/call", {"name": "long_task", "arguments": {"steps": 1, "interval_s": 0.01}})
        await h.drain(r)
        actor = h.runtime.actors[sid]
        alarm = backend.namespace(sid).get_alarm()
        assert alarm is not None and alarm < time.time() + 61  # armed for the grace, not the TTL
        assert 1 in actor.log.streams
        h.runtime.evict_idle(time.time() + 3600)  # asleep: only the alarm can drop the stream now
        await h.runtime.run_alarms(alarm + 0.1)
        woken = await h.runtime.get(sid)
        assert 1 not in woken.log.streams and backend.namespace(sid).list("e/0000000001/") == []
        assert backend.namespace(sid).get_alarm() > time.time() + 3000  # back to the session's TTL
        backend.close()

    run(go())


# -- JSON replies, thread tools -----------------------------------------------------------------


def test_json_mode_cancelled_request_gets_an_error_reply_and_close_stream_spares_the_get_stream():
    from engine.actors.settings import Settings
    from engine.protocol.http import HttpConfig

    async def go():
        h = Harness(app, settings=Settings(http=HttpConfig(json_response=True)))
        sid = await h.initialize()
        listen = await h.get(sid)
        call = asyncio.ensure_future(h.call(sid, 1, "tools/call", {"name": "wait", "arguments": {}}))
        await asyncio.sleep(0.02)
        await h.post(sid, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
        r = await asyncio.wait_for(call, 2)
        assert r.status == 200 and str_headers(r.headers)["content-type"] == "application/json"
        body = json.loads(r.body)
        assert body["id"] == 1 and body["error"]["code"] == -32800
        done = await h.call(sid, 2, "tools/call", {"name": "close_then_finish", "arguments": {}})
        assert json.loads(done.body)["result"]["content"][0]["text"] == "finished"
        assert not listen.stream.closed  # the GET stream was not the request's to close
        listen.stream.detach()

    run(go())


def test_a_thread_tool_can_notify_with_the_sqlite_store(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(app, backend)
        h.runtime._loop = asyncio.get_running_loop()
        import threading

        h.runtime._thread = threading.get_ident()
        h.runtime.app.listen(h.runtime.announce)
        try:
            sid = await h.initialize()
            await h.call(sid, 1, "resources/subscribe", {"uri": "faults://watched"})
            listen = await h.get(sid)
            r = await h.call(sid, 2, "tools/call", {"name": "threaded_notes", "arguments": {}})
            got = messages(await h.drain(r))
            assert [m["params"]["data"] for m in got[:-1]] == [
                "from the thread, through anyio", "from the thread, in a loop of its own"]
            assert got[-1]["result"]["content"][0]["text"] == "threaded"
            await asyncio.sleep(0.05)
            update = messages(await listen.stream.next(0.5))
            assert update and update[0]["params"] == {"uri": "faults://watched"}
            listen.stream.detach()
        finally:
            h.runtime.app.unlisten(h.runtime.announce)
        backend.close()

    run(go())
