"""Everything bounded: what one client can make the server hold, and for how long.

Socket-level tests run ``python -m engine serve`` as a subprocess and play the hostile
client with raw sockets (a 1 MB request head, heads that never finish, more connections
than allowed, a body that trickles in); in-process tests reach into the actors to see
what a client that never reads makes them hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Iterator

import httpx
import pytest

from engine import App, Context
from engine.actors.memory_store import MemoryBackend
from engine.actors.session_actor import Lifetimes
from engine.demo import app as demo_app
from inproc import Harness, frames, messages
from sse_client import headers, initialize

app = App("limits", "1.0")


@app.tool()
async def flood(ctx: Context, events: int = 200, size: int = 1000) -> str:
    for i in range(events):
        await ctx.info("x" * size)
        if i % 20 == 0:
            await asyncio.sleep(0)
    return f"sent {events}"


def raw(port: int, data: bytes, read: bool = True, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_and_body(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


def ping_ok(url: str, sid: str, timeout: float = 2.0) -> float:
    """Seconds a well-behaved ping took."""
    started = time.monotonic()
    r = httpx.post(url, headers=headers(sid), content=PING, timeout=timeout)
    assert r.status_code == 200
    return time.monotonic() - started


# -- a client that never reads --------------------------------------------------------------------


def test_a_connection_whose_client_does_not_read_is_cut_at_its_bound_and_nothing_is_lost():
    async def go():
        h = Harness(app, lifetimes=Lifetimes(max_buffer=50_000))
        sid = await h.initialize()
        r = await h.call(sid, 1, "tools/call", {"name": "flood", "arguments": {"events": 300, "size": 1000}})
        conn = r.stream  # nobody pumps it: the client is not reading
        primed = frames(r.body)[0][0]
        for _ in range(200):
            await asyncio.sleep(0.01)
            if conn.overflowed:
                break
        assert conn.overflowed and conn.closed and not conn.chunks  # let go, and its queue with it
        actor = h.runtime.actors[sid]
        assert 1 not in actor.connections
        while actor.tasks:
            await asyncio.sleep(0.01)
        # the events are in the log: the client resumes and gets every one of them, in order
        resumed = await h.get(sid, primed)
        got = messages(resumed.body)
        assert len(got) == 301 and got[-1]["result"]["content"][0]["text"] == "sent 300"
        ids = [f[0] for f in frames(resumed.body)]
        assert ids == [f"1:{n}" for n in range(2, 303)]

    asyncio.run(go())


# -- request heads and connections (the local server) -----------------------------------------------


@pytest.fixture(scope="module")
def strict_server():
    from conftest import Server

    server = Server(None, "--head-timeout", "1", "--body-timeout", "1", "--max-connections", "40",
                    "--max-headers", "100", "--max-head-bytes", "16384", "--idle-timeout", "0.5")
    yield server
    server.stop()


def test_an_oversized_head_is_431_at_once_and_stalls_no_one(strict_server):
    port = strict_server.port
    with httpx.Client(timeout=5) as c:
        sid = initialize(c, strict_server.url)
    many = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x: 1\r\n" * 200_000 + b"\r\n"
    status, body = status_and_body(raw(port, many))  # refused at the 101st header, not after the rest
    assert status == 431 and body["error"]["code"] == -32600 and "at most 100 headers" in body["error"]["message"]
    big = b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nx: " + b"y" * 100_000 + b"\r\n\r\n"
    assert status_and_body(raw(port, big))[0] == 431
    ping_ok(strict_server.url, sid)  # answered (within its 2 s timeout): nobody is stalled
    status, body = status_and_body(raw(port, b"NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400 and body["error"]["code"] == -32600  # JSON-RPC, never text/plain


def test_slow_heads_and_bodies_are_timed_out(strict_server):
    port = strict_server.port
    started = time.monotonic()
    status, body = status_and_body(raw(port, b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow:"))
    assert status == 408 and "head" in body["error"]["message"] and time.monotonic() - started < 3
    head = (b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"accept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\"")
    status, body = status_and_body(raw(port, head))
    assert status == 408 and "body" in body["error"]["message"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # sends nothing at all
        assert s.recv(10) == b""  # closed by the server within the head timeout


def _listen_request() -> bytes:
    """A whole 2026-07-28 subscriptions/listen request: its connection then holds a live stream."""
    from modern_client import body as modern_body, modern_headers

    payload = json.dumps(modern_body(1, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in modern_headers("subscriptions/listen").items())
    return (f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}content-length: {len(payload)}\r\n\r\n").encode() + payload


@contextlib.contextmanager
def held(port: int, count: int, data: bytes, answer: bytes | None = None) -> Iterator[list[socket.socket]]:
    """``count`` connections, each sent ``data`` (and, with ``answer``, checked to have been
    answered with what starts so), held open for the block, closed after it."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
            s.sendall(data)
            if answer is not None:
                assert s.recv(4096).startswith(answer)
        yield socks
    finally:
        for s in socks:
            s.close()


def test_at_the_cap_slow_heads_are_shed_so_a_fresh_client_gets_in(strict_server):
    """Twice the cap (40) of connections trickling a head: each new one sheds the oldest, and a
    fresh client initializes and calls a tool as if they were not there; the slow ones end
    (shed with 503, or by the head timeout as before)."""
    with held(strict_server.port, 80, b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n") as slow:  # never the rest
        with httpx.Client(timeout=5) as c:
            sid = initialize(c, strict_server.url)
            r = c.post(strict_server.url, headers=headers(sid), json={
                "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "in"}}})
            assert r.status_code == 200 and '"text":"in"' in r.text, r.text
        ends = [s.recv(1024) for s in slow]  # every one ends, none is left hanging
        assert all(e.startswith((b"HTTP/1.1 503", b"HTTP/1.1 408")) for e in ends), {e[:20] for e in ends}
        assert sum(e.startswith(b"HTTP/1.1 503") for e in ends) >= 40  # shed for the newer ones


def test_at_the_cap_idle_kept_alive_connections_are_shed_before_anyone_is_refused(strict_server):
    with httpx.Client(timeout=5) as c:
        sid = initialize(c, strict_server.url)
    # Each has had a request answered and stays open for the next.
    with held(strict_server.port, 40, b"GET /nowhere HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", b"HTTP/1.1 404") as idle:
        ping_ok(strict_server.url, sid)  # admitted: an idle one made room
        assert idle[0].recv(10) == b""  # the oldest idle connection, closed quietly


def test_when_every_connection_is_busy_a_new_one_is_refused_and_the_server_recovers(strict_server):
    """Connections with a live stream are never shed: past the cap of them, 503 at once."""
    with httpx.Client(timeout=5) as c:
        sid = initialize(c, strict_server.url)
    with held(strict_server.port, 40, _listen_request(), b"HTTP/1.1 200") as busy:  # each with its stream open
        status, body = status_and_body(raw(strict_server.port, b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"))
        assert status == 503 and body["error"]["code"] == -32801
        for s in busy:  # none was shed: each is still open
            s.setblocking(False)
            try:
                assert s.recv(4096) != b""  # (or it has sent more of its stream)
            except BlockingIOError:
                pass
    for _ in range(50):  # admitted again once their connection_lost has run
        if status_and_body(raw(strict_server.port, b"GET /nowhere HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"))[0] == 404:
            break
        time.sleep(0.1)
    ping_ok(strict_server.url, sid)


def test_an_idle_keepalive_connection_is_closed(strict_server):
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=5) as s:
        s.sendall(b"GET /nowhere HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 404")
        started = time.monotonic()
        while s.recv(4096):  # the server closes it once idle (--idle-timeout 0.5)
            pass
        assert time.monotonic() - started < 3


# -- sessions --------------------------------------------------------------------------------------------


def test_the_session_cap_refuses_with_503_and_unused_sessions_expire(start_server):
    server = start_server(None, "--max-sessions", "3", "--handshake-ttl", "0.6", "--idle-evict", "0.2")
    url = server.url
    with httpx.Client(timeout=5) as c:
        used = initialize(c, url)  # completes its handshake: it lives its full TTL
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}}}
        unused = [c.post(url, json=init, headers=headers(None)).headers["mcp-session-id"] for _ in range(2)]
        r = c.post(url, json=init, headers=headers(None))
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["id"] == 0 and r.json()["error"]["code"] == -32801
        assert "limit of 3 sessions" in r.json()["error"]["message"]
        time.sleep(2.0)  # the unused ones never sent notifications/initialized: they expire
        for sid in unused:
            assert c.post(url, json=json.loads(PING), headers=headers(sid)).status_code == 404
        assert c.post(url, json=json.loads(PING), headers=headers(used)).status_code == 200
        assert c.post(url, json=init, headers=headers(None)).status_code == 200  # room again


def test_a_failed_initialize_makes_no_session(demo_server):
    r = httpx.post(demo_server.url, headers=headers(None), json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": 2025}})
    assert r.status_code == 200 and r.json()["error"]["code"] == -32602
    assert "mcp-session-id" not in r.headers


def test_subscriptions_are_capped_per_session(start_server):
    server = start_server(None, "--max-subscriptions", "2")
    with httpx.Client(timeout=5) as c:
        sid = initialize(c, server.url)
        codes = []
        for i in range(3):
            r = c.post(server.url, headers={**headers(sid), "accept": "application/json, text/event-stream"},
                       json={"jsonrpc": "2.0", "id": i, "method": "resources/subscribe", "params": {"uri": f"demo://{i}"}})
            last = [line for line in r.text.splitlines() if line.startswith("data: {")][-1]
            codes.append(json.loads(last[6:]).get("error", {}).get("code"))
    assert codes == [None, None, -32602]


def test_the_memory_store_lets_go_of_ended_sessions():
    async def go():
        backend = MemoryBackend()
        h = Harness(demo_app, backend)
        for _ in range(300):
            sid = await h.initialize()
            await h.call(sid, 1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
            r = await h.request("DELETE", {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
            assert r.status == 204
        assert len(backend.spaces) <= 1 and not backend.alarms  # the announcement log, at most
        assert h.runtime.sessions == 0

    asyncio.run(go())
