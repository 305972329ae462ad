"""A cluster of engine processes over one PostgreSQL database, behind a round-robin nginx:
requests land on every process and sessions work from any of them (raw HTTP, rule by rule).

The real parts are started by the tests (tests/cluster.py): a private PostgreSQL 15 and a
real nginx; without them the tier is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from sse_client import events, headers, initialize, long_task_until, resume

pytestmark = pytest.mark.cluster

CALL = {"jsonrpc": "2.0", "method": "tools/call"}


def call(c: httpx.Client, url: str, sid: str, rid: int, name: str, **arguments) -> httpx.Response:
    return c.post(url, headers=headers(sid), json={**CALL, "id": rid, "params": {"name": name, "arguments": arguments}})


def parsed(text: str) -> list[tuple[str | None, dict | None]]:
    return [(e.id, e.message) for e in events(text.splitlines() + [""])]


def result_of(r: httpx.Response) -> dict:
    """The JSON-RPC response in a reply (JSON, or the last message of an SSE body)."""
    if r.headers["content-type"].startswith("application/json"):
        return r.json()
    return [m for _, m in parsed(r.text) if m is not None and "id" in m][-1]


def test_sessions_work_through_the_balancer_and_requests_land_on_every_process(cluster):
    c3 = cluster(3)
    with httpx.Client(timeout=15) as c:
        sessions = [initialize(c, c3.url) for _ in range(6)]
        for round_ in range(4):
            for i, sid in enumerate(sessions):
                r = call(c, c3.url, sid, round_ + 1, "add", a=i, b=round_)
                assert r.status_code == 200, r.text
                assert result_of(r)["result"]["content"][0]["text"] == str(float(i + round_))
        # Each process answered a share; the sessions live on more than one of them.
        served = c3.nginx.upstreams()
        assert set(served) == {s.port for s in c3.servers} and min(served.values()) >= 5, served
        holders = {c3.holder(sid) for sid in sessions}
        assert len(holders) >= 2, holders
        # A request straight to each process reaches the session wherever it lives.
        sid = sessions[0]
        for i, server in enumerate(c3.servers):
            r = call(c, server.url, sid, 100 + i, "echo", text=f"via {i}")
            assert result_of(r)["result"]["content"][0]["text"] == f"via {i}"
        # DELETE from one process ends it for all.
        assert c.delete(c3.servers[1].url, headers=headers(sid)).status_code == 204
        for server in c3.servers:
            gone = call(c, server.url, sid, 200, "echo", text="x")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == -32001


def test_a_stream_resumes_with_last_event_id_from_any_process(cluster):
    """A long call's SSE stream, relayed from its holder, dropped half way; each process
    replays the rest exactly once and in order."""
    c3 = cluster(3)
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, c3.url)
        holder = c3.index_of_holder(sid)
        via = c3.servers[(holder + 1) % 3]
        seen = long_task_until(c, via.url, sid, 7, 6, 0.25, "p", progress=2)
        last = seen[-1].id
        time.sleep(2)  # the call finishes while nobody listens
        replays = [[(e.id, e.data) for e in resume(c, server.url, sid, last) if e.id] for server in c3.servers]
        assert replays[0] == replays[1] == replays[2]
        ids = [i for i, _ in replays[0]]
        counters = [int(i.split(":")[1]) for i in ids]
        assert counters == list(range(int(last.split(":")[1]) + 1, counters[-1] + 1))
        final = json.loads(replays[0][-1][1])
        assert final["id"] == 7 and "6 steps" in final["result"]["content"][0]["text"]


def test_a_get_stream_relayed_from_the_holder_hears_announcements_made_anywhere(cluster):
    """The session's GET stream is open through another process; a tool on a third process
    updates a resource the session subscribed to: the update arrives once."""
    c3 = cluster(3)
    with httpx.Client(timeout=15) as c:
        sid = initialize(c, c3.url)
        holder = c3.index_of_holder(sid)
        others = [s for i, s in enumerate(c3.servers) if i != holder]
        r = c.post(others[0].url, headers=headers(sid),
                   json={"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "demo://notes"}})
        assert r.status_code == 200
        other = initialize(c, others[1].url)
        with c.stream("GET", others[0].url, headers={**headers(sid), "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            time.sleep(0.3)
            done = call(c, others[1].url, other, 2, "add_note", text="from afar")
            assert done.status_code == 200
            buffer, deadline = "", time.monotonic() + 10
            for chunk in stream.iter_text():
                buffer += chunk
                updates = [m for _, m in parsed(buffer) if m and m.get("method") == "notifications/resources/updated"]
                if updates or time.monotonic() > deadline:
                    break
        assert updates == [{"jsonrpc": "2.0", "method": "notifications/resources/updated",
                            "params": {"uri": "demo://notes"}}]


def test_forged_calls_between_processes_are_refused(cluster):
    c2 = cluster(2)
    internal = c2.servers[0].internal_url()
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, c2.servers[0].url)
        route = json.dumps({"action": "message", "session_id": sid, "needs_body": True})
        body = json.dumps({**CALL, "id": 1, "params": {"name": "echo", "arguments": {"text": "x"}}})
        for extra in ({}, {"x-mcp-actors-time": str(time.time()), "x-mcp-actors-signature": "00" * 32}):
            r = c.post(internal + "/forward", content=body, headers={"x-mcp-actors-route": route, **extra})
            assert r.status_code == 403 and r.content == b""
        # The public port has no such path at all.
        assert c.post(c2.servers[0].url.replace("/mcp", "/forward"), content=body).status_code == 404
