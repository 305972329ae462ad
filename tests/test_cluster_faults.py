"""What a cluster promises when a process dies, stops, or the database goes away: every
client resumes through the balancer on another process with nothing lost, repeated or
answered twice (tests/cluster.py starts the real parts)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from modern_client import call as modern_call
from sse_client import events, headers, initialize, long_task_until, resume
from test_tasks import RESTARTED, start_task, wait_for

pytestmark = pytest.mark.cluster


def contiguous(ids: list[str], after: str | None = None) -> bool:
    """Event ids of one stream, each the next counter (after ``after``, when given)."""
    counters = [int(i.split(":")[1]) for i in ids]
    first = int(after.split(":")[1]) + 1 if after else counters[0]
    return counters == list(range(first, first + len(counters))) and len({i.split(":")[0] for i in ids}) == 1


class GetStream(threading.Thread):
    """The session's GET stream, read until it ends; then resumed from the last event seen,
    as a client does, until ``stop``."""

    def __init__(self, url: str, sid: str):
        super().__init__(daemon=True)
        self.url, self.sid = url, sid
        self.ids: list[str] = []
        self.connections = 0
        self.stop = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=60)) as c:
            while not self.stop.is_set():
                h = {**headers(self.sid), "accept": "text/event-stream"}
                if self.ids:
                    h["last-event-id"] = self.ids[-1]
                try:
                    with c.stream("GET", self.url, headers=h) as r:
                        if r.status_code != 200:
                            time.sleep(0.2)
                            continue
                        self.connections += 1
                        self.connected.set()
                        for ev in events(r.iter_lines()):
                            if ev.id and ev.message is not None:
                                self.ids.append(ev.id)
                            if self.stop.is_set():
                                return
                except httpx.TransportError:
                    time.sleep(0.2)


def test_kill_9_of_a_sessions_holder_the_client_resumes_elsewhere(cluster):
    """The holder dies with a long call running, a GET stream open and two tasks running:
    through the balancer the client resumes on another process; every committed event is
    replayed once, in order; the call ends -32603; the task that may be redone is run again
    and completes, the other fails."""
    c3 = cluster(3)
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, c3.url)
        holder = c3.index_of_holder(sid)
        victim = c3.servers[holder]
        r = c.post(victim.url, headers=headers(sid),
                   json={"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "demo://notes"}})
        assert r.status_code == 200
        get_stream = GetStream(c3.url, sid)
        get_stream.start()
        assert get_stream.connected.wait(10)
        doomed = start_task(c, victim.url, "long_task", {"steps": 400, "interval_s": 0.05})
        redone = start_task(c, victim.url, "count_primes", {"below": 60_000, "pause_s": 0.3}, rid=2)
        # An announcement while the GET stream is open: it is committed to the session's log.
        note = c.post(c3.url, headers=headers(initialize(c, c3.url)),
                      json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "add_note", "arguments": {"text": "before the crash"}}})
        assert note.status_code == 200
        seen = long_task_until(c, c3.url, sid, 1, steps=400, interval=0.05, token="crash", progress=3)
        time.sleep(0.3)  # more events are committed while nobody listens to that stream
        c3.kill(holder)
        killed_at = time.monotonic()

        rest = resume(c, c3.url, sid, seen[-1].id)  # through the balancer, to whoever takes it over
        took = time.monotonic() - killed_at
        assert contiguous([e.id for e in rest], after=seen[-1].id), [e.id for e in rest]
        progress = [e.message["params"]["progress"] for e in rest[:-1]]
        assert progress == list(range(4, 4 + len(progress))) and len(progress) >= 2
        final = rest[-1].message
        assert final["id"] == 1 and final["error"]["code"] == -32603 and "restarted" in final["error"]["message"]
        assert took < 4 * c3.lease, took
        assert [e.data for e in resume(c, c3.url, sid, seen[-1].id)] == [e.data for e in rest]  # the same again

        # The session lives on elsewhere, under the same id.
        r = c.post(c3.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                        "params": {"name": "echo", "arguments": {"text": "again"}}})
        assert r.status_code == 200 and '"text":"again"' in r.text
        assert c3.index_of_holder(sid) != holder

        # Tasks: failed (it cannot be redone) or run again to the end (rerun=True).
        failed = wait_for(c, c3.url, doomed["taskId"], {"failed", "completed"})
        assert failed["status"] == "failed" and RESTARTED in failed["statusMessage"]
        finished = wait_for(c, c3.url, redone["taskId"], {"completed", "failed"}, timeout=30)
        assert finished["status"] == "completed", finished

        # The GET stream: resumed by the client after the crash, no event twice, none skipped.
        note = c.post(c3.url, headers=headers(initialize(c, c3.url)),
                      json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "add_note", "arguments": {"text": "after the crash"}}})
        assert note.status_code == 200
        deadline = time.monotonic() + 10
        while len(get_stream.ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        get_stream.stop.set()
        assert get_stream.connections >= 2 and get_stream.ids
        assert contiguous(get_stream.ids), get_stream.ids


def test_a_paused_holder_past_its_lease_is_fenced_and_drops_its_actors(cluster):
    """SIGSTOP the holder past its lease while its session is used elsewhere, then SIGCONT:
    its late writes are refused, it drops the actor, and the client sees no duplicate, no
    gap and no second answer."""
    c3 = cluster(3)
    with httpx.Client(timeout=30) as c:
        sid = initialize(c, c3.url)
        holder = c3.index_of_holder(sid)
        paused = c3.servers[holder]
        others = [s for i, s in enumerate(c3.servers) if i != holder]
        # A call running on the holder (its stream relayed), which will keep emitting after SIGCONT.
        seen = long_task_until(c, others[0].url, sid, 1, steps=60, interval=0.1, token="paused", progress=2)
        c3.pause(holder)
        try:
            time.sleep(c3.lease * 1.5)
            # Used elsewhere meanwhile: the first request waits out the lease, then takes it over.
            for i in range(3):
                r = c.post(others[i % 2].url, headers=headers(sid), json={
                    "jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": f"elsewhere {i}"}}})
                assert r.status_code == 200 and f"elsewhere {i}" in r.text, r.text
            assert c3.index_of_holder(sid) != holder
        finally:
            c3.resume(holder)
        time.sleep(1.5)  # the woken process runs its handler a while, tries to write, is refused
        assert "were refused" in paused.output() or "taken over meanwhile" in paused.output(), paused.output()
        # The interrupted call has exactly one answer, the new holder's: -32603; no event twice.
        rest = resume(c, c3.url, sid, seen[-1].id)
        assert contiguous([e.id for e in rest], after=seen[-1].id)
        answers = [e.message for e in rest if e.message and e.message.get("id") == 1]
        assert len(answers) == 1 and answers[0]["error"]["code"] == -32603, answers
        # And the woken process serves the session again by relaying, not from stale memory.
        r = c.post(paused.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 20, "method": "tools/call",
                                                            "params": {"name": "echo", "arguments": {"text": "back"}}})
        assert r.status_code == 200 and "back" in r.text, r.text + c3.output()[-6000:]
        assert c3.index_of_holder(sid) != holder


def test_the_database_restarted_under_load(cluster, postgres):
    """While the database is down, requests fail with 503 (-32802) and nothing else; what
    was acknowledged before is there after; service resumes by itself."""
    c2 = cluster(2)
    acknowledged: list[tuple[str, str]] = []
    statuses: dict[int, int] = {}
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as c:
            sessions = []
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if len(sessions) < 4:
                        sessions.append(initialize(c, c2.url))
                    sid = sessions[n % len(sessions)]
                    r = c.post(c2.url, headers=headers(sid), json={
                        "jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "echo", "arguments": {"text": f"n{n}"}}})
                except (httpx.TransportError, AssertionError):
                    statuses[0] = statuses.get(0, 0) + 1
                    time.sleep(0.05)
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200 and f"n{n}" in r.text:
                    acknowledged.append((sid, r.text))
                elif r.status_code == 503:
                    assert r.json()["error"]["code"] in (-32802, -32803), r.text
                    time.sleep(0.05)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(1.5)
    before = len(acknowledged)
    postgres.stop_for(seconds=3)  # the database is down for a while, then back on the same port and data
    ready = c2.servers[0].url.removesuffix("/mcp") + "/readyz"
    readiness = []
    deadline = time.monotonic() + c2.lease * 3
    with httpx.Client(timeout=5) as probe:  # what a load balancer's health check sees meanwhile
        while time.monotonic() < deadline:
            r = probe.get(ready)
            if not readiness or readiness[-1][0] != r.status_code:
                readiness.append((r.status_code, r.text.strip()))
            time.sleep(0.1)
    stop.set()
    for w in workers:
        w.join(30)
    after = len(acknowledged)
    assert before > 20 and after > before + 20, (before, after, statuses)
    assert statuses.get(503, 0) > 0 and set(statuses) <= {200, 503, 404, 0}, (statuses, c2.output()[-5000:])
    # Sessions acknowledged before the outage still answer, with their events replayable.
    with httpx.Client(timeout=30) as c:
        for sid in {sid for sid, _ in acknowledged[:before]}:
            r = c.post(c2.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": "last", "method": "ping"})
            assert r.status_code == 200, r.text
    assert "Traceback" not in c2.output()
    # Ready (unless a commit failed before the first probe), then not (a commit failed, or
    # the heartbeat could not be written within the lease), then ready again by itself.
    assert [status for status, _ in readiness] in ([200, 503, 200], [503, 200]), readiness
    reason = readiness[-2][1]
    assert "the store cannot commit" in reason or "heartbeat" in reason, readiness


def test_modern_requests_are_answered_by_any_process(cluster):
    """2026-07-28 is stateless: every process answers, and requestState sealed by one is
    accepted by another (one secret for the cluster, kept in the database)."""
    c3 = cluster(3)
    with httpx.Client(timeout=30) as c:
        r, msg, _ = modern_call(c, c3.servers[0].url, 1, "tools/call", {"name": "confirm", "arguments": {"action": "x"}},
                                {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}})
        assert msg["result"]["resultType"] == "input_required", msg
        state = msg["result"]["requestState"]
        key = next(iter(msg["result"]["inputRequests"]))
        r, msg, _ = modern_call(c, c3.servers[2].url, 2, "tools/call", {
            "name": "confirm", "arguments": {"action": "x"}, "requestState": state,
            "inputResponses": {key: {"action": "accept", "content": {"confirm": True}}}},
            {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}})
        assert msg["result"]["resultType"] == "complete", msg
        task = start_task(c, c3.servers[1].url, "long_task", {"steps": 2, "interval_s": 0.1})
        for server in c3.servers:  # tasks/get from anywhere, relayed to the task's holder or read back
            assert wait_for(c, server.url, task["taskId"], {"completed"})["status"] == "completed"
