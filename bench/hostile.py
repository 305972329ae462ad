"""Scenario (g): the server under hostile clients, measured from outside in one run.

- 100 clients call a tool that streams progress as fast as it can, and never read: the
  server's RSS over 30 s shows whether what it buffers for them is bounded.
- Requests with 100,000 headers (1 MB heads) and 1,000 half-open connections that send a
  head a byte at a time arrive together, while a well-behaved session pings every 20 ms on
  its own kept-alive connection: the longest ping is the longest stall its event loop
  suffered, and its p99 what a real user would feel.
- Twice the connection cap of slow heads held open, then fresh clients, each on a new
  connection, initialize and call a tool: what a newcomer waits while a slowloris holds
  every place (the server sheds the slow ones to admit it).
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time

import httpx

from . import clients

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-11-25"}


def _non_readers(port: int, sid: str, count: int, seconds: float) -> list[socket.socket]:
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "firehose", "arguments": {"seconds": seconds}, "_meta": {"progressToken": 1}}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"accept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-11-25\r\n"
            f"mcp-session-id: {sid}\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and then never read
        s.sendall(head + body)
        held.append(s)
    return held


def non_reading_clients(server, count: int, seconds: float) -> dict:
    sid = clients.open_session(server.url)
    before = server.rss()
    held = _non_readers(server.port, sid, count, seconds)
    peak = before
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(0.5)
        peak = max(peak, server.rss())
    for s in held:
        s.close()
    time.sleep(1.0)
    return {"before": before, "peak": peak, "after": server.rss()}


def _big_heads(port: int, stop: threading.Event, sent: list) -> None:
    head = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x: 1\r\n" * 100_000 + b"\r\n"
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(head)
                s.recv(1024)
                sent.append(1)
        except OSError:
            time.sleep(0.01)


def _slow_heads(port: int, count: int, stop: threading.Event, opened: list) -> None:
    socks = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /mcp HTTP/1.1\r\n")
            socks.append(s)
            opened.append(1)
        except OSError:
            pass
    while not stop.is_set():  # a byte a second on each, as a slowloris does
        for s in socks:
            try:
                s.send(b"x")
            except OSError:
                pass
        stop.wait(1.0)
    for s in socks:
        s.close()


def stalls(server, seconds: float, slow: int, head_threads: int = 2) -> dict:
    sid = clients.open_session(server.url)
    latencies: list[float] = []
    failures = 0
    stop = threading.Event()
    sent: list = []
    opened: list = []
    attackers = [threading.Thread(target=_big_heads, args=(server.port, stop, sent)) for _ in range(head_threads)]
    attackers.append(threading.Thread(target=_slow_heads, args=(server.port, slow, stop, opened)))
    with httpx.Client(timeout=10, headers={**HEADERS, "mcp-session-id": sid}) as c:
        c.post(server.url, content=PING)  # the well-behaved connection is open before the attack
        for t in attackers:
            t.start()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            t0 = time.monotonic()
            try:
                if c.post(server.url, content=PING).status_code != 200:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            latencies.append(time.monotonic() - t0)
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t0)))
        stop.set()
        for t in attackers:
            t.join(30)
    latencies.sort()
    return {"pings": len(latencies), "failures": failures, "max_ms": latencies[-1] * 1000,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
            "median_ms": statistics.median(latencies) * 1000, "big_heads": len(sent), "slow_opened": len(opened)}


def fresh_clients_at_the_cap(server, cap: int, clients_n: int = 50) -> dict:
    """``2 * cap`` slow heads open (a byte a second each), then ``clients_n`` fresh clients in
    turn, each on a new connection: initialize + notifications/initialized + tools/call.
    Their latencies (ms) and how many failed (a 503 at the cap counts as failed)."""
    stop = threading.Event()
    opened: list = []
    attacker = threading.Thread(target=_slow_heads, args=(server.port, 2 * cap, stop, opened))
    attacker.start()
    while attacker.is_alive() and len(opened) < 2 * cap:
        time.sleep(0.05)
    latencies: list[float] = []
    failures = 0
    call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "hi"}}}).encode()
    try:
        for _ in range(clients_n):
            t0 = time.monotonic()
            try:  # new connections each (open_session has a client of its own)
                sid = clients.open_session(server.url)
                with httpx.Client(timeout=10, headers={**HEADERS, "mcp-session-id": sid}) as c:
                    ok = c.post(server.url, content=call).status_code == 200
            except (httpx.HTTPError, clients.CheckFailed):
                ok = False
            latencies.append(time.monotonic() - t0)
            failures += not ok
    finally:
        stop.set()
        attacker.join(30)
    latencies.sort()
    return {"clients": clients_n, "failures": failures, "slow_opened": len(opened),
            "median_ms": statistics.median(latencies) * 1000, "max_ms": latencies[-1] * 1000}
