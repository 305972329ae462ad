"""Resumption with Last-Event-ID over real sockets, and isolation between sessions."""

from __future__ import annotations

import threading

import httpx

from sse_client import events, headers, initialize, long_task_until, resume, start_long_task


def test_drop_mid_task_then_resume_gets_exactly_the_missed_events(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        seen = long_task_until(c, url, sid, 1, steps=6, interval=0.15, token="t", progress=2)
        assert seen[0].data == "" and seen[0].id == "1:1"  # priming
        last = seen[-1].id
        assert last == "1:3"
        rest = resume(c, url, sid, last)
    ids = [e.id for e in rest]
    assert ids == ["1:4", "1:5", "1:6", "1:7", "1:8"], ids
    progress = [e.message["params"]["progress"] for e in rest[:-1]]
    assert progress == [3, 4, 5, 6]
    final = rest[-1].message
    assert final["id"] == 1 and "finished 6 steps" in final["result"]["content"][0]["text"]


def test_resume_after_the_stream_finished_replays_the_rest(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        with start_long_task(c, url, sid, 1, steps=3, interval=0.05, token="t") as r:
            all_events = list(events(r.iter_lines()))
        assert [e.id for e in all_events] == ["1:1", "1:2", "1:3", "1:4", "1:5"]
        again = resume(c, url, sid, "1:2")
        assert [e.data for e in again] == [e.data for e in all_events[2:]]
        assert resume(c, url, sid, "1:5") == []


def test_bad_last_event_ids(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        h = {**headers(sid), "accept": "text/event-stream"}
        for bad in ("garbage", "99:1", "1:1000", "-1:0"):
            r = c.get(url, headers={**h, "last-event-id": bad})
            assert r.status_code == 400, bad
            assert r.json()["error"]["code"] == -32600


def test_sessions_reusing_json_rpc_ids_never_see_each_other(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        a = initialize(c, url)
        b = initialize(c, url)
        cut: dict = {}

        def run(sid, token):
            with httpx.Client(timeout=10) as own:
                with start_long_task(own, url, sid, 1, steps=4, interval=0.1, token=token) as r:
                    for ev in events(r.iter_lines()):
                        if ev.message:
                            cut[token] = ev.id
                            return

        threads = [threading.Thread(target=run, args=(a, "A")), threading.Thread(target=run, args=(b, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # Both sessions used JSON-RPC id 1 and both got stream 1: same event ids, separate logs.
        assert cut["A"] == cut["B"] == "1:2"
        rest_a = resume(c, url, a, cut["A"])
        rest_b = resume(c, url, b, cut["B"])
    tokens_a = {e.message["params"]["progressToken"] for e in rest_a if "params" in e.message}
    tokens_b = {e.message["params"]["progressToken"] for e in rest_b if "params" in e.message}
    assert tokens_a == {"A"} and tokens_b == {"B"}
    assert rest_a[-1].message["id"] == 1 and rest_b[-1].message["id"] == 1


def test_get_stream_resumes_with_last_event_id(demo_server):
    url = demo_server.url
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, url)
        c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
                                                 "params": {"uri": "demo://notes"}})
        h = {**headers(sid), "accept": "text/event-stream"}
        first: list = []

        def listen():
            with httpx.Client(timeout=10) as c2, c2.stream("GET", url, headers=h) as r:
                for ev in events(r.iter_lines()):
                    first.append(ev)
                    if ev.message:
                        return

        t = threading.Thread(target=listen)
        t.start()
        for _ in range(100):
            if first:
                break
            threading.Event().wait(0.02)
        assert first and first[0].data == ""  # primed
        c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                 "params": {"name": "add_note", "arguments": {"text": "one"}}})
        t.join(5)
        # The listener left after the first note; two more arrive while nobody listens.
        for i, text in enumerate(("two", "three")):
            c.post(url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 3 + i, "method": "tools/call",
                                                     "params": {"name": "add_note", "arguments": {"text": text}}})
        missed = []
        with c.stream("GET", url, headers={**h, "last-event-id": first[-1].id}) as r:
            for ev in events(r.iter_lines()):
                missed.append(ev)
                if len(missed) == 2:
                    break
    assert [e.message["method"] for e in missed] == ["notifications/resources/updated"] * 2
    n = int(first[-1].id.split(":")[1])
    assert [e.id for e in missed] == [f"0:{n + 1}", f"0:{n + 2}"]
