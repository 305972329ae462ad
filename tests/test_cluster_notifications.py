"""Notifications across a cluster's processes: list changes reach listen streams on every
process, a listen stream hears a task that runs elsewhere, and a session-era task's status
reaches its session's stream after the session moved (tests/cluster.py starts the parts)."""

from __future__ import annotations

import threading

import httpx
import pytest

from modern_client import call, listen
from sse_client import events, headers, initialize
from test_tasks import TASKS, session_call, start_task, wait_for

pytestmark = pytest.mark.cluster

EVERYTHING = "examples.everything:app"


def test_list_changes_reach_listen_streams_on_every_process(cluster):
    c3 = cluster(3, EVERYTHING)
    with httpx.Client(timeout=15) as c:
        streams = [listen(c, s.url, f"l-{i}", {"toolsListChanged": True}) for i, s in enumerate(c3.servers)]
        try:
            readers = [events(s.iter_lines()) for s in streams]
            for reader in readers:
                assert next(reader).message["method"] == "notifications/subscriptions/acknowledged"
            with httpx.Client(timeout=15) as other:  # the change is made on the second process
                call(other, c3.servers[1].url, 1, "tools/call", {"name": "test_trigger_tool_change", "arguments": {}})
            for i, reader in enumerate(readers):
                note = next(reader).message
                assert note == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
                                "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": f"l-{i}"}}}, note
        finally:
            for stream in streams:
                stream.close()


def test_a_listen_stream_hears_a_task_that_runs_on_another_process(cluster):
    """The task runs where it was created (process 0); the listen stream is on process 2; its
    input is given through process 1."""
    c3 = cluster(3, EVERYTHING)
    with httpx.Client(timeout=15) as c:
        task_id = start_task(c, c3.servers[0].url, "confirm_delete", {"filename": "far.txt"})["taskId"]
        stream = listen(c, c3.servers[2].url, "far", {"taskIds": [task_id]}, TASKS)
        try:
            lines = events(stream.iter_lines())
            assert next(lines).message["params"]["notifications"] == {"taskIds": [task_id]}
            with httpx.Client(timeout=15) as other:
                wait_for(other, c3.servers[1].url, task_id, {"input_required"})
                r, msg, _ = call(other, c3.servers[1].url, 2, "tasks/update", {"taskId": task_id, "inputResponses": {
                    "confirm": {"action": "accept", "content": {"confirm": False}}}}, TASKS)
                assert r.status_code == 200, msg
            seen = []
            while "completed" not in seen:
                note = next(lines).message
                assert note["method"] == "notifications/tasks" and note["params"]["taskId"] == task_id, note
                seen.append(note["params"]["status"])
            assert note["params"]["result"]["content"][0]["text"] == "kept 'far.txt'"
        finally:
            stream.close()


def test_a_session_era_task_reaches_its_session_after_the_session_moved(cluster):
    """A session's task runs on its holder; the holder is told to stop (SIGTERM) while the task
    runs: the idle session moves on at once (its GET stream ends and is resumed through the
    balancer on the next holder), the task finishes on the draining process, and its final
    status reaches the session's stream where the session now lives."""
    c3 = cluster(3, EVERYTHING)
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, c3.url)
        holder = c3.index_of_holder(sid)
        task = session_call(c, c3.url, sid, 1, "tools/call", {
            "name": "slow_compute", "arguments": {"seconds": 3, "label": "moved"}, "task": {}})["result"]["task"]
        stopping = threading.Thread(target=c3.terminate, args=(holder,), daemon=True)
        statuses, last, connections = [], None, 0
        h = {**headers(sid), "accept": "text/event-stream"}
        while "completed" not in statuses and connections < 10:
            connections += 1
            if last:
                h["last-event-id"] = last
            with c.stream("GET", c3.url, headers=h) as stream:
                assert stream.status_code == 200, stream.read()
                if connections == 1:
                    stopping.start()
                for ev in events(stream.iter_lines()):
                    last = ev.id or last
                    note = ev.message
                    if note and note.get("method") == "notifications/tasks/status":
                        assert note["params"]["taskId"] == task["taskId"]
                        statuses.append(note["params"]["status"])
                        if note["params"]["status"] == "completed":
                            break
        stopping.join(30)
        assert statuses[-1:] == ["completed"] and connections >= 2, (statuses, connections, c3.output()[-6000:])
        assert c3.index_of_holder(sid) != holder
        result = session_call(c, c3.url, sid, 2, "tasks/result", {"taskId": task["taskId"]})["result"]
        assert result["content"][0]["text"].startswith('Computation "moved" completed')
