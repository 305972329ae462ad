"""Deploying a cluster: every process restarted in turn under load fails nothing a client
cannot resume, and ``--workers N`` makes one machine a cluster on one port
(tests/cluster.py starts the real parts)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cluster import sql
from conftest import Server
from sse_client import events, headers, initialize, start_long_task
from test_cluster_faults import GetStream, contiguous

pytestmark = pytest.mark.cluster


class SessionClient(threading.Thread):
    """A client as a well-behaved peer is: one session; short calls and streamed long ones in
    turn; a stream that ends before its answer is resumed with Last-Event-ID (through the
    balancer, wherever the session now lives). What it could not recover is a failure."""

    def __init__(self, url: str, number: int):
        super().__init__(daemon=True)
        self.url, self.number = url, number
        self.stop = threading.Event()
        self.answered = 0
        self.resumed = 0
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=60)) as c:
            try:
                sid = initialize(c, self.url)
            except Exception as exc:  # noqa: BLE001 - a failure to report, not to raise in a thread
                self.failures.append(f"initialize: {exc!r}")
                return
            rid = 0
            while not self.stop.is_set():
                rid += 1
                try:
                    if rid % 3:
                        self._short(c, sid, rid)
                    else:
                        self._streamed(c, sid, rid)
                except Exception as exc:  # noqa: BLE001
                    self.failures.append(f"request {rid}: {exc!r}")
                    time.sleep(0.1)

    def _short(self, c: httpx.Client, sid: str, rid: int) -> None:
        text = f"c{self.number} r{rid}"
        r = c.post(self.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                                                         "params": {"name": "echo", "arguments": {"text": text}}})
        if r.status_code != 200 or text not in r.text:
            self.failures.append(f"request {rid}: {r.status_code} {r.text[:300]}")
        else:
            self.answered += 1

    def _streamed(self, c: httpx.Client, sid: str, rid: int) -> None:
        """long_task (progress every 0.1 s, about 0.8 s): the answer, read through any number of cuts."""
        seen: list = []
        try:
            with start_long_task(c, self.url, sid, rid, 8, 0.1, f"t{rid}") as r:
                if r.status_code != 200:
                    self.failures.append(f"request {rid}: {r.status_code} {r.read()[:300]!r}")
                    return
                seen += events(r.iter_lines())
        except httpx.TransportError:
            pass  # cut mid-stream: resumed below from the last event id seen
        for _ in range(10):
            answer = [e.message for e in seen if e.message and e.message.get("id") == rid]
            if answer:
                if "result" not in answer[0]:
                    self.failures.append(f"request {rid}: answered {answer[0]}")
                else:
                    self.answered += 1
                return
            last = next((e.id for e in reversed(seen) if e.id), None)
            if last is None:
                self.failures.append(f"request {rid}: the stream ended before its first event")
                return
            self.resumed += 1
            h = {**headers(sid), "accept": "text/event-stream", "last-event-id": last}
            try:
                with c.stream("GET", self.url, headers=h) as r:
                    if r.status_code == 200:
                        seen += events(r.iter_lines())
                    else:
                        time.sleep(0.1)
            except httpx.TransportError:
                time.sleep(0.1)
        self.failures.append(f"request {rid}: no answer after 10 resumptions")


def test_a_rolling_restart_under_load_fails_nothing_a_client_cannot_resume(cluster):
    """SIGTERM each of three processes in turn (the next once its replacement listens) while
    session clients keep calling through nginx: every request is answered, directly or by
    resuming its stream; the GET stream open throughout misses and repeats nothing."""
    c3 = cluster(3)
    clients = [SessionClient(c3.url, i) for i in range(6)]
    for client in clients:
        client.start()
    with httpx.Client(timeout=30) as c:
        watcher_sid = initialize(c, c3.url)
        r = c.post(c3.url, headers=headers(watcher_sid), json={
            "jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "demo://notes"}})
        assert r.status_code == 200, r.text
        watcher = GetStream(c3.url, watcher_sid)
        watcher.start()
        assert watcher.connected.wait(10)
        note_id = 0

        def note() -> None:  # an announcement: every session's GET stream hears it, wherever it lives
            nonlocal note_id
            note_id += 1
            r = c.post(c3.url, headers=headers(watcher_sid), json={
                "jsonrpc": "2.0", "id": 1000 + note_id, "method": "tools/call",
                "params": {"name": "add_note", "arguments": {"text": f"note {note_id}"}}})
            assert r.status_code == 200, r.text

        time.sleep(1.5)
        note()
        served_before = sum(cl.answered for cl in clients)
        exit_codes = []
        for i in range(3):
            old = c3.servers[i]
            started = time.monotonic()
            new = c3.restart(i)  # terminate (drain, hand over) and wait, then a new process on the port
            exit_codes.append((old.proc.returncode, round(time.monotonic() - started, 1)))
            assert new.proc.poll() is None
            note()
            time.sleep(1.5)
        note()
        time.sleep(1.0)
    for client in clients:
        client.stop.set()
    for client in clients:
        client.join(60)
    watcher.stop.set()
    failures = [f for cl in clients for f in cl.failures]
    answered = sum(cl.answered for cl in clients)
    assert not failures, (failures[:20], c3.output()[-8000:])
    assert answered > served_before + 30, (served_before, answered)
    # Each old process drained and exited by itself (uvicorn re-raises the SIGTERM it handled,
    # hence -15), well within its bound: new work for its sessions went to the processes
    # that took them over, so the drain did not wait out --drain-timeout.
    assert all(code in (0, -15) for code, _ in exit_codes), exit_codes
    assert all(seconds < 8 for _, seconds in exit_codes), exit_codes
    # Five notes, each heard once on the GET stream (it moved with its session, resumed each time).
    assert watcher.connections >= 2 and len(watcher.ids) == note_id and contiguous(watcher.ids), \
        (watcher.connections, note_id, watcher.ids)
    assert "Traceback" not in c3.output(), c3.output()[-8000:]


def test_workers_share_one_port_as_a_cluster(database):
    """``--workers 2``: two processes on one port over PostgreSQL; sessions work from either
    (relayed to the worker that holds them), and a worker killed is replaced."""
    import os
    import signal

    server = Server(None, "--store", database, "--workers", "2", "--lease", "2")
    try:
        with httpx.Client(timeout=15) as c:
            deadline = time.monotonic() + 20  # the banner is the first worker's; the second may be joining
            while sql(database, "SELECT count(*) FROM mcp_actors.nodes") != [["2"]] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sql(database, "SELECT count(*) FROM mcp_actors.nodes") == [["2"]]
            sessions: list[str] = []

            def fresh_session(_: int) -> str:  # a new connection each: either worker may accept it
                with httpx.Client(timeout=15) as fresh:
                    return initialize(fresh, server.url)

            # The kernel gives each connection to whichever worker accepts first, which is not
            # fair when idle: concurrent handshakes, until both workers hold sessions.
            with ThreadPoolExecutor(8) as pool:
                for _ in range(20):
                    sessions += pool.map(fresh_session, range(8))
                    if sql(database, "SELECT count(DISTINCT node) FROM mcp_actors.owners") == [["2"]]:
                        break
            for round_ in range(3):
                for i, sid in enumerate(sessions):
                    with httpx.Client(timeout=15) as fresh:
                        r = fresh.post(server.url, headers=headers(sid), json={
                            "jsonrpc": "2.0", "id": round_ + 1, "method": "tools/call",
                            "params": {"name": "echo", "arguments": {"text": f"s{i} r{round_}"}}})
                    assert r.status_code == 200 and f"s{i} r{round_}" in r.text, r.text
            assert sql(database, "SELECT count(DISTINCT node) FROM mcp_actors.owners") == [["2"]], \
                "both workers hold sessions"
            # A worker killed: the supervisor starts another; the sessions go on.
            pids = [int(p) for p in os.popen(f"pgrep -P {server.proc.pid}").read().split()]
            assert len(pids) == 2, pids
            os.kill(pids[0], signal.SIGKILL)
            time.sleep(1.0)
            for i, sid in enumerate(sessions):
                r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
                assert r.status_code == 200, (r.text, server.output()[-4000:])
            again = [int(p) for p in os.popen(f"pgrep -P {server.proc.pid}").read().split()]
            assert len(again) == 2 and pids[0] not in again, again
    finally:
        server.stop()
