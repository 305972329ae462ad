"""Tasks on both wires, over raw HTTP against a real server, and what only a restart shows.

- 2026-07-28 (the ``io.modelcontextprotocol/tasks`` extension): the server decides, the
  client polls ``tasks/get``, answers with ``tasks/update``, follows with a listen stream;
- 2025-11-25 (``params.task``): the session's tasks, ``tasks/result`` blocking, the status
  notifications on the GET stream, other sessions kept out;
- durability: a kill -9 in the middle (a task that cannot be redone fails, one that can is
  run again, a finished one keeps its result), expiry at the TTL, the per-session bound, a
  failed commit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx

from conftest import Server
from engine.actors import session_tasks, task_actor
from engine.actors.sqlite_store import SqliteBackend
from engine.protocol import tasks as task_protocol
from examples.everything import app as everything_app
from inproc import Harness, messages
from modern_client import body, call, listen, modern_headers
from sse_client import events, headers as session_headers, initialize

TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}},
                                                        "elicitation": {"form": {}}}}
RESTARTED = "The server restarted while this task was running"


def start_task(client, url, tool: str, arguments: dict, rid=1) -> dict:
    r, msg, _ = call(client, url, rid, "tools/call", {"name": tool, "arguments": arguments}, TASKS)
    assert r.status_code == 200, msg
    return msg["result"]


def get(client, url, task_id: str, rid="g") -> dict:
    r, msg, _ = call(client, url, rid, "tasks/get", {"taskId": task_id}, TASKS)
    assert r.status_code == 200, msg
    return msg["result"]


def wait_for(client, url, task_id: str, statuses: set, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = get(client, url, task_id)
        if task["status"] in statuses or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


# -- 2026-07-28 --------------------------------------------------------------------------------


def test_a_task_is_announced_then_polled_to_its_inlined_result(everything_server, client):
    created = start_task(client, everything_server.url, "slow_compute", {"seconds": 1, "label": "poll"})
    assert created["resultType"] == "task" and created["status"] == "working"
    assert created["ttlMs"] == task_protocol.DEFAULT_TTL_MS and created["pollIntervalMs"] > 0
    assert created["createdAt"].endswith("Z") and "result" not in created
    task = wait_for(client, everything_server.url, created["taskId"], {"completed"})
    assert task["status"] == "completed" and task["resultType"] == "complete"
    assert task["result"]["content"][0]["text"] == 'Computation "poll" completed after 1 seconds. Result: 42.'
    assert task["taskId"] == created["taskId"] and task["lastUpdatedAt"] >= task["createdAt"]


def test_the_extension_decides_whether_a_tool_runs_as_a_task(everything_server, client):
    r, msg, _ = call(client, everything_server.url, 1, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}})
    assert r.status_code == 200 and msg["result"]["resultType"] == "complete"  # optional: inline without it
    r, msg, _ = call(client, everything_server.url, 2, "tools/call", {"name": "failing_job", "arguments": {}})
    assert r.status_code == 400 and msg["error"]["code"] == -32021  # required: the capability is missing
    assert msg["error"]["data"]["requiredCapabilities"] == {"extensions": {"io.modelcontextprotocol/tasks": {}}}
    r, msg, _ = call(client, everything_server.url, 3, "tools/call", {"name": "greet", "arguments": {"name": "x"}}, TASKS)
    assert msg["result"]["resultType"] == "complete"  # a plain tool stays plain with the extension too
    r, msg, _ = call(client, everything_server.url, 4, "tasks/get", {"taskId": "whatever"})
    assert r.status_code == 400 and msg["error"]["code"] == -32021  # tasks/* without declaring the extension


def test_input_required_is_answered_with_tasks_update(everything_server, client):
    created = start_task(client, everything_server.url, "confirm_delete", {"filename": "b.txt"})
    task = wait_for(client, everything_server.url, created["taskId"], {"input_required"})
    assert task["status"] == "input_required"
    question = task["inputRequests"]["confirm"]
    assert question["method"] == "elicitation/create" and question["params"]["message"] == "Delete 'b.txt'?"
    r, msg, _ = call(client, everything_server.url, 5, "tasks/update", {"taskId": created["taskId"], "inputResponses": "yes"},
                     TASKS)
    assert r.status_code == 400 and msg["error"]["code"] == -32602
    r, msg, _ = call(client, everything_server.url, 6, "tasks/update", {"taskId": created["taskId"], "inputResponses": {
        "nobody-asked": {"action": "accept", "content": {}},
        "confirm": {"action": "accept", "content": {"confirm": True}}}}, TASKS)
    assert set(msg["result"]) <= {"resultType", "_meta"} and msg["result"]["resultType"] == "complete"
    # (an empty acknowledgement; the unknown key was ignored)
    task = wait_for(client, everything_server.url, created["taskId"], {"completed"})
    assert task["result"]["content"][0]["text"] == "deleted 'b.txt'"


def test_cancel_stops_the_handler_and_is_idempotent(everything_server, client):
    created = start_task(client, everything_server.url, "slow_compute", {"seconds": 30})
    for rid in (7, 8):
        r, msg, _ = call(client, everything_server.url, rid, "tasks/cancel", {"taskId": created["taskId"]}, TASKS)
        assert r.status_code == 200 and set(msg["result"]) <= {"resultType", "_meta"}
    task = get(client, everything_server.url, created["taskId"])
    assert task["status"] == "cancelled" and "result" not in task


def test_failed_is_for_json_rpc_errors_and_a_tool_error_completes(everything_server, client):
    tool_error = start_task(client, everything_server.url, "failing_job", {})
    protocol_error = start_task(client, everything_server.url, "protocol_error_job", {}, rid=2)
    done = wait_for(client, everything_server.url, tool_error["taskId"], {"completed", "failed"})
    assert done["status"] == "completed" and done["result"]["isError"] is True
    failed = wait_for(client, everything_server.url, protocol_error["taskId"], {"completed", "failed"})
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": -32603, "message": "The job hit an internal error"}


def test_unknown_ids_and_a_mismatched_mcp_name(everything_server, client):
    r, msg, _ = call(client, everything_server.url, 9, "tasks/get", {"taskId": "no-such-task"}, TASKS)
    assert r.status_code == 400 and msg["error"]["code"] == -32602 and "not found" in msg["error"]["message"]
    r, msg, _ = call(client, everything_server.url, 10, "tasks/get", {"taskId": 42}, TASKS, name="42")
    assert msg["error"]["code"] == -32602
    created = start_task(client, everything_server.url, "slow_compute", {"seconds": 0})
    r, msg, _ = call(client, everything_server.url, 11, "tasks/get", {"taskId": created["taskId"]}, TASKS, name="another")
    assert r.status_code == 400 and msg["error"]["code"] == -32020  # Mcp-Name must match when sent


def test_a_listen_stream_follows_the_tasks_it_names(everything_server, client):
    created = start_task(client, everything_server.url, "confirm_delete", {"filename": "c.txt"})
    task_id = created["taskId"]
    stream = listen(client, everything_server.url, "l-1", {"taskIds": [task_id]}, TASKS)
    try:
        lines = events(stream.iter_lines())
        ack = next(lines).message
        assert ack["params"]["notifications"] == {"taskIds": [task_id]}
        seen = [] if get(client, everything_server.url, task_id)["status"] != "input_required" else ["input_required"]
        with httpx.Client(timeout=10) as other:
            wait_for(other, everything_server.url, task_id, {"input_required"})
            call(other, everything_server.url, 12, "tasks/update", {"taskId": task_id, "inputResponses": {
                "confirm": {"action": "accept", "content": {"confirm": False}}}}, TASKS)
        while "completed" not in seen:
            note = next(lines).message
            assert note["method"] == "notifications/tasks"
            assert note["params"]["taskId"] == task_id
            assert note["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": "l-1"}
            seen.append(note["params"]["status"])
        assert note["params"]["result"]["content"][0]["text"] == "kept 'c.txt'"  # the detailed state, inlined
    finally:
        stream.close()
    r, msg, _ = call(client, everything_server.url, 13, "subscriptions/listen", {"notifications": {"taskIds": [task_id]}})
    assert msg["error"]["code"] == -32021  # following tasks needs the extension


def test_an_input_first_tool_asks_inline_then_becomes_a_task(everything_server, client):
    args = {"name": "test_tool_with_task", "arguments": {}}
    r, msg, _ = call(client, everything_server.url, 14, "tools/call", args, TASKS)
    first = msg["result"]
    assert first["resultType"] == "input_required" and "user_name" in first["inputRequests"]
    args["inputResponses"] = {"user_name": {"action": "accept", "content": {"name": "Ada"}}}
    args["requestState"] = first["requestState"]
    r, msg, _ = call(client, everything_server.url, 15, "tools/call", args, TASKS)
    created = msg["result"]
    assert created["resultType"] == "task"
    task = wait_for(client, everything_server.url, created["taskId"], {"completed"})
    assert task["result"]["content"][0]["text"] == "Hello, Ada!"


# -- 2025-11-25 --------------------------------------------------------------------------------


def session_call(client, url, sid, rid, method, params=None) -> dict:
    message = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    r = client.post(url, headers=session_headers(sid), json=message)
    assert r.status_code == 200, r.text
    if r.headers["content-type"].startswith("text/event-stream"):
        return [e.message for e in events(r.text.splitlines()) if e.message][-1]
    return r.json()


def test_2025_tasks_of_a_session(everything_server, client):
    sid = initialize(client, everything_server.url)
    tools = session_call(client, everything_server.url, sid, 1, "tools/list")["result"]["tools"]
    support = {t["name"]: t["execution"]["taskSupport"] for t in tools if "execution" in t}
    assert support["slow_compute"] == "optional" and support["confirm_delete"] == "required"
    assert "greet" not in support  # forbidden: the field is left out
    created = session_call(client, everything_server.url, sid, 2, "tools/call", {
        "name": "slow_compute", "arguments": {"seconds": 1, "label": "s"}, "task": {"ttl": 120000}})["result"]
    task = created["task"]
    assert task["status"] == "working" and task["ttl"] == 120000 and task["pollInterval"] > 0
    got = session_call(client, everything_server.url, sid, 3, "tasks/get", {"taskId": task["taskId"]})["result"]
    assert got["taskId"] == task["taskId"] and got["status"] in ("working", "completed")
    result = session_call(client, everything_server.url, sid, 4, "tasks/result", {"taskId": task["taskId"]})["result"]
    assert result["content"][0]["text"].startswith('Computation "s" completed')  # it waited
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    listed = session_call(client, everything_server.url, sid, 5, "tasks/list")["result"]["tasks"]
    assert [t["taskId"] for t in listed] == [task["taskId"]] and listed[0]["status"] == "completed"
    error = session_call(client, everything_server.url, sid, 6, "tasks/cancel", {"taskId": task["taskId"]})["error"]
    assert error["code"] == -32602 and "terminal" in error["message"]

    other = initialize(client, everything_server.url)  # another session sees none of it
    assert session_call(client, everything_server.url, other, 1, "tasks/list")["result"]["tasks"] == []
    error = session_call(client, everything_server.url, other, 2, "tasks/get", {"taskId": task["taskId"]})["error"]
    assert error["code"] == -32602


def test_2025_task_support_is_negotiated_per_tool(everything_server, client):
    sid = initialize(client, everything_server.url)
    error = session_call(client, everything_server.url, sid, 1, "tools/call", {"name": "confirm_delete", "arguments": {}})["error"]
    assert error["code"] == -32601 and "params.task" in error["message"]
    error = session_call(client, everything_server.url, sid, 2, "tools/call", {
        "name": "greet", "arguments": {"name": "x"}, "task": {}})["error"]
    assert error["code"] == -32601 and "forbidden" in error["message"]
    plain = session_call(client, everything_server.url, sid, 3, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}})
    assert plain["result"]["content"][0]["text"].startswith("Computation")  # optional: inline without params.task


def test_2025_status_notifications_reach_the_get_stream(everything_server, client):
    sid = initialize(client, everything_server.url)
    with client.stream("GET", everything_server.url, headers={**session_headers(sid), "accept": "text/event-stream"}) as stream:
        lines = events(stream.iter_lines())
        with httpx.Client(timeout=10) as other:
            task = session_call(other, everything_server.url, sid, 1, "tools/call", {
                "name": "protocol_error_job", "arguments": {}, "task": {}})["result"]["task"]
        while True:
            note = next(lines).message
            if note and note.get("method") == "notifications/tasks/status" and note["params"]["status"] == "failed":
                break
        assert note["params"]["taskId"] == task["taskId"]
    with httpx.Client(timeout=10) as other:
        error = session_call(other, everything_server.url, sid, 2, "tasks/result", {"taskId": task["taskId"]})["error"]
    assert error == {"code": -32603, "message": "The job hit an internal error"}  # what the request would have had


# -- durability --------------------------------------------------------------------------------


class RestartCase:
    """What a restart must sort out, and the checks afterwards (also run under workerd): a
    task that cannot be redone fails with a clear message, one whose tool may be rerun
    completes after all, a finished one keeps its result, and the session that made a
    2025-11-25 task still finds it (failed)."""

    def __init__(self, client: httpx.Client, url: str, finished: str, finished_text: str):
        self.finished, self.finished_text = finished, finished_text
        self.lost = start_task(client, url, "long_task", {"steps": 200, "interval_s": 0.2})["taskId"]
        self.redo = start_task(client, url, "count_primes", {"below": 100000, "pause_s": 0.4})["taskId"]
        self.sid = initialize(client, url)
        self.old = session_call(client, url, self.sid, 1, "tools/call", {
            "name": "long_task", "arguments": {"steps": 200, "interval_s": 0.2}, "task": {}})["result"]["task"]["taskId"]
        time.sleep(1)

    def check(self, client: httpx.Client, url: str) -> None:
        failed = get(client, url, self.lost)  # asked about: found dead at once
        assert failed["status"] == "failed" and failed["error"]["code"] == -32603
        assert failed["error"]["message"].startswith(RESTARTED)
        again = wait_for(client, url, self.redo, {"completed", "failed"}, timeout=60)
        assert again["status"] == "completed", again
        assert again["result"]["content"][0]["text"] == "9592 primes below 100000"
        kept = get(client, url, self.finished)
        assert kept["status"] == "completed" and self.finished_text in kept["result"]["content"][0]["text"]
        task = session_call(client, url, self.sid, 2, "tasks/get", {"taskId": self.old})["result"]
        assert task["status"] == "failed" and task["statusMessage"].startswith(RESTARTED)


def test_kill_9_mid_task(tmp_path, client):
    store = f"sqlite:{tmp_path}/state.db"
    server = Server(None, "--store", store)
    try:
        done = start_task(client, server.url, "long_task", {"steps": 1, "interval_s": 0.01})
        assert wait_for(client, server.url, done["taskId"], {"completed"})["status"] == "completed"
        case = RestartCase(client, server.url, done["taskId"], "finished 1 steps")
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(5)
        server = Server(None, "--store", store)
        case.check(client, server.url)
    finally:
        server.stop()


def test_a_task_nobody_asks_about_is_failed_by_its_alarm_after_a_restart(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(everything_app, backend)
        r = await h.request("POST", modern_headers("tools/call", "slow_compute"), body(
            1, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 60}}, TASKS))
        task_id = json.loads(r.body)["result"]["taskId"]
        await h.runtime.stop()  # the process ends with the task running (as kill -9 would leave it)
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(everything_app, backend)
        assert not h.runtime.task_actors
        await h.runtime.run_alarms(time.time() + task_actor.HEARTBEAT + 1)  # its heartbeat alarm, overdue
        record = task_protocol.decode(backend.namespace("task:" + task_id).get("task"))
        assert record.status == "failed" and record.status_message.startswith(RESTARTED)
        await h.runtime.stop()

    asyncio.run(go())


def test_a_finished_task_and_its_result_are_deleted_at_its_ttl(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(everything_app, backend)
        sid = await h.initialize()
        r = await h.call(sid, 1, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}, "task": {"ttl": 1000}})
        task_id = messages(await h.drain(r))[-1]["result"]["task"]["taskId"]
        r = await h.call(sid, 2, "tasks/result", {"taskId": task_id})
        assert "Result: 42" in messages(await h.drain(r))[-1]["result"]["content"][0]["text"]
        await h.runtime.run_alarms(time.time() + 0.5)  # before its time: kept
        r = await h.call(sid, 3, "tasks/get", {"taskId": task_id})
        assert messages(await h.drain(r))[-1]["result"]["status"] == "completed"
        await h.runtime.run_alarms(time.time() + 2)
        r = await h.call(sid, 4, "tasks/get", {"taskId": task_id})
        assert messages(await h.drain(r))[-1]["error"]["code"] == -32602
        assert not backend.exists("task:" + task_id, "task")  # the record and result are gone
        r = await h.call(sid, 5, "tasks/list")
        assert messages(await h.drain(r))[-1]["result"]["tasks"] == []  # and the session's index forgets it
        assert h.runtime.backend.namespace(sid).list("k/") == []
        await h.runtime.stop()

    asyncio.run(go())


def test_a_session_keeps_a_bounded_number_of_tasks(monkeypatch):
    monkeypatch.setattr(session_tasks, "MAX_TASKS_PER_SESSION", 2)

    async def go():
        h = Harness(everything_app)
        sid = await h.initialize()
        for rid in (1, 2):
            r = await h.call(sid, rid, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}, "task": {}})
            assert "task" in messages(await h.drain(r))[-1]["result"]
        r = await h.call(sid, 3, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}, "task": {}})
        error = messages(await h.drain(r))[-1]["error"]
        assert error["code"] == -32600 and "Too many tasks" in error["message"]
        other = await h.initialize()  # the bound is per session
        r = await h.call(other, 1, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}, "task": {}})
        assert "task" in messages(await h.drain(r))[-1]["result"]
        await h.runtime.stop()

    asyncio.run(go())


def test_a_failed_commit_while_creating_leaves_no_task_and_the_next_one_works(tmp_path):
    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(everything_app, backend)
        sid = await h.initialize()
        pages = backend.db.execute("PRAGMA page_count").fetchone()[0]
        backend.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        big = {"name": "slow_compute", "arguments": {"seconds": 0, "label": "x" * 20000}, "task": {}}
        r = await h.call(sid, 1, "tools/call", big)
        error = messages(await h.drain(r))[-1]["error"]
        assert error["code"] == -32802 and "not applied" in error["message"]
        assert not h.runtime.task_actors  # no task half-made in memory either
        backend.db.execute("PRAGMA max_page_count = 1000000")
        r = await h.call(sid, 2, "tasks/list")
        assert messages(await h.drain(r))[-1]["result"]["tasks"] == []  # nothing half-made is visible
        r = await h.call(sid, 3, "tools/call", big)
        task_id = messages(await h.drain(r))[-1]["result"]["task"]["taskId"]
        r = await h.call(sid, 4, "tasks/result", {"taskId": task_id})
        assert "Result: 42" in messages(await h.drain(r))[-1]["result"]["content"][0]["text"]
        await h.runtime.stop()

    asyncio.run(go())


def test_a_finished_task_leaves_memory_soon_and_is_read_back_from_storage(tmp_path):
    """Finished actors kept for the session's --idle-evict would make every full garbage
    collection walk them; a finished record is final, so its actor leaves after FINISHED_IDLE."""

    async def go():
        backend = SqliteBackend(tmp_path / "state.db")
        h = Harness(everything_app, backend)  # --idle-evict: its default, 30 s

        async def modern(rid, method, params):
            r = await h.request("POST", modern_headers(method, params.get("name", params.get("taskId", ""))),
                                body(rid, method, params, TASKS))
            return json.loads(r.body)["result"]

        done = (await modern(1, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}}))["taskId"]
        running = (await modern(2, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 60}}))["taskId"]
        for _ in range(100):
            if (await modern(3, "tasks/get", {"taskId": done}))["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        now = time.time()
        h.runtime.evict_idle(now + task_actor.FINISHED_IDLE / 2)
        assert done in h.runtime.task_actors  # not yet
        h.runtime.evict_idle(now + task_actor.FINISHED_IDLE + 0.5)
        assert done not in h.runtime.task_actors and running in h.runtime.task_actors
        task = await modern(4, "tasks/get", {"taskId": done})  # woken from storage, same answer
        assert task["status"] == "completed" and "Result: 42" in json.dumps(task)
        await h.runtime.stop()

    asyncio.run(go())
