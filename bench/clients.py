"""Client-side work the bench does in Python: the check pass, the replay measurement and
the concurrent long streams. Raw HTTP (httpx, asyncio streams): no SDK in the way."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

ACCEPT = "application/json, text/event-stream"
INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}


def _headers(sid: str | None) -> dict:
    h = {"content-type": "application/json", "accept": ACCEPT, "mcp-protocol-version": "2025-11-25"}
    if sid:
        h["mcp-session-id"] = sid
    return h


def messages_of(response: httpx.Response) -> list[dict]:
    """JSON-RPC messages in a reply, whether application/json or text/event-stream."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()]
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]


class CheckFailed(AssertionError):
    pass


def open_session(url: str, stateless: bool = False) -> str | None:
    """initialize + initialized, checking each reply's kind; the session id (None if stateless)."""
    with httpx.Client(timeout=10) as c:
        r = c.post(url, json=INIT, headers=_headers(None))
        if r.status_code != 200 or messages_of(r)[-1].get("result", {}).get("protocolVersion") is None:
            raise CheckFailed(f"{url}: initialize answered {r.status_code} {r.text[:200]}")
        sid = r.headers.get("mcp-session-id")
        if sid is None and not stateless:
            raise CheckFailed(f"{url}: no Mcp-Session-Id from a stateful server")
        r = c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=_headers(sid))
        if r.status_code != 202:
            raise CheckFailed(f"{url}: notifications/initialized answered {r.status_code}")
        return sid


def check_echo(url: str, sid: str | None, expect_sse: bool) -> None:
    """The check pass: one echo call, its reply kind and its content."""
    with httpx.Client(timeout=10) as c:
        r = c.post(url, headers=_headers(sid), json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                     "params": {"name": "echo", "arguments": {"text": "hello"}}})
    kind = r.headers.get("content-type", "")
    if r.status_code != 200 or (kind.startswith("text/event-stream") != expect_sse):
        raise CheckFailed(f"{url}: tools/call answered {r.status_code} {kind}")
    last = messages_of(r)[-1]
    if last.get("id") != 1 or last["result"]["content"][0]["text"] != "hello":
        raise CheckFailed(f"{url}: tools/call result {last}")


MODERN_HEADERS = {"content-type": "application/json", "accept": ACCEPT, "mcp-protocol-version": "2026-07-28",
                  "mcp-method": "tools/call", "mcp-name": "echo"}
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def check_modern_echo(url: str) -> None:
    """The check pass of a 2026-07-28 server: one echo call, answered as one JSON body."""
    with httpx.Client(timeout=10) as c:
        r = c.post(url, headers=MODERN_HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "hello"}, "_meta": MODERN_META}})
    if r.status_code != 200 or not r.headers.get("content-type", "").startswith("application/json"):
        raise CheckFailed(f"{url}: 2026-07-28 tools/call answered {r.status_code} {r.headers.get('content-type')}")
    last = r.json()
    if last.get("id") != 1 or last["result"]["content"][0]["text"] != "hello" or \
            last["result"].get("resultType") != "complete":
        raise CheckFailed(f"{url}: 2026-07-28 tools/call result {last}")


def replay(url: str, n: int) -> dict:
    """Start burst(n), drop the connection after the first event id, let the call finish,
    then time a GET with Last-Event-ID and check it delivers exactly what was missed."""
    sid = open_session(url)
    first_id = None
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "burst", "arguments": {"n": n}, "_meta": {"progressToken": "r"}}}
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", url, json=body, headers=_headers(sid)) as r:
            for line in r.iter_lines():
                if line.startswith("id: "):
                    first_id = line[4:]
                    break
        if first_id is None:
            return {"ok": False, "why": "no event id on the POST stream (not resumable)"}
        time.sleep(1.0 + n / 20000)  # the call finishes while nobody listens
        progress: list = []
        final = None
        started = time.perf_counter()
        with c.stream("GET", url, headers={**_headers(sid), "accept": "text/event-stream",
                                           "last-event-id": first_id}) as r:
            if r.status_code != 200:
                return {"ok": False, "why": f"GET with Last-Event-ID answered {r.status_code}"}
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    msg = json.loads(line[6:])
                    if msg.get("method") == "notifications/progress":
                        progress.append(msg["params"]["progress"])
                    elif msg.get("id") == 7:
                        final = msg
                        break
        seconds = time.perf_counter() - started
    exact = final is not None and progress[-1:] == [n] and progress == list(range(progress[0], n + 1)) \
        if progress else False
    return {"ok": bool(exact), "seconds": seconds, "events": len(progress) + (final is not None),
            "why": "" if exact else f"got {len(progress)} progress events, final={'yes' if final else 'no'}"}


async def _stream(port: int, sid: str, rid: int, steps: int, interval: float) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "ticks", "arguments": {"steps": steps, "interval_s": interval},
                                  "_meta": {"progressToken": rid}}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: {ACCEPT}\r\nMcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    data = await reader.read()
    writer.close()
    return data.count(b"notifications/progress") if f'"id":{rid},"result"'.encode() in data else -1


async def concurrent_streams(url: str, streams: int, steps: int, interval: float, sample_rss) -> dict:
    port = int(url.split(":")[2].split("/")[0])
    sid = open_session(url)
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, sample_rss())
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    counts = await asyncio.gather(*(_stream(port, sid, 1000 + i, steps, interval) for i in range(streams)),
                                  return_exceptions=True)
    seconds = time.perf_counter() - started
    watcher.cancel()
    complete = [c for c in counts if isinstance(c, int) and c == steps]
    events = sum(c for c in counts if isinstance(c, int) and c > 0)
    return {"streams": streams, "complete": len(complete), "events": events, "seconds": seconds,
            "events_per_s": events / seconds, "peak_rss": peak}


TASKS_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}


def _modern(client: httpx.Client, url: str, method: str, params: dict, name: str) -> dict:
    headers = {**MODERN_HEADERS, "mcp-method": method, "mcp-name": name}
    r = client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                "params": {**params, "_meta": TASKS_META}})
    if r.status_code != 200:
        raise CheckFailed(f"{url}: {method} answered {r.status_code} {r.text[:200]}")
    return r.json()["result"]


def finished_task(url: str) -> str:
    """The check pass of the tasks scenario: create a task of ``job``, poll it to
    ``completed`` and check its result; returns its id."""
    with httpx.Client(timeout=10) as c:
        created = _modern(c, url, "tools/call", {"name": "job", "arguments": {"text": "hello"}}, "job")
        if created.get("resultType") != "task" or not created.get("taskId"):
            raise CheckFailed(f"{url}: a task tool answered {created}")
        task_id = created["taskId"]
        for _ in range(100):
            task = _modern(c, url, "tasks/get", {"taskId": task_id}, task_id)
            if task["status"] == "completed":
                if task["result"]["content"][0]["text"] != "hello":
                    raise CheckFailed(f"{url}: the task's result is {task['result']}")
                return task_id
            time.sleep(0.02)
    raise CheckFailed(f"{url}: the task did not complete: {task}")
