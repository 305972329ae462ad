"""The 2024-11-05 HTTP+SSE transport: the official Python SDK's sse_client, raw HTTP rules,
and the session's lifetime, all on the same actors as Streamable HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest

import mcp.types as types
from mcp import ClientSession
from mcp.client.sse import sse_client

from engine.actors.session_actor import Lifetimes
from engine.demo import app as demo_app
from engine.local.runtime import LocalRuntime
from sse_client import events, headers, initialize


def sse_url(server) -> str:
    return server.url.replace("/mcp", "/sse")


@asynccontextmanager
async def connect(url: str, **kwargs):
    async with sse_client(url, timeout=10, sse_read_timeout=30) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=15,
                                 client_info=types.Implementation(name="legacy-e2e", version="0"),
                                 **kwargs) as session:
            await session.initialize()
            yield session


def run(fn, timeout: float = 30):
    async def main():
        with anyio.fail_after(timeout):
            return await fn()
    return anyio.run(main)


def test_python_sdk_sse_client_full_session(demo_server):
    progress: list = []
    sampled: list = []
    updates: list = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    async def sampling(ctx, params):
        sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", model="m", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text="sampled!"))

    async def elicitation(ctx, params):
        return types.ElicitResult(action="accept", content={"confirm": True})

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri="file:///legacy/root", name="r")])

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    async def body():
        async with connect(sse_url(demo_server), sampling_callback=sampling, elicitation_callback=elicitation,
                           list_roots_callback=roots, message_handler=on_message) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert {"echo", "long_task", "ask_llm", "confirm", "show_roots"} <= names
            assert (await s.call_tool("echo", {"text": "over sse"})).content[0].text == "over sse"
            r = await s.call_tool("long_task", {"steps": 3, "interval_s": 0.05}, progress_callback=on_progress)
            assert "finished 3 steps" in r.content[0].text
            assert (await s.call_tool("ask_llm", {"question": "why?"})).content[0].text == "sampled!"
            assert (await s.call_tool("confirm", {"action": "ship"})).content[0].text == "confirmed: ship"
            assert (await s.call_tool("show_roots", {})).content[0].text == "file:///legacy/root"
            assert (await s.read_resource("demo://greeting/Sse")).contents[0].text == "Hello, Sse!"
            prompt = await s.get_prompt("summarize", {"text": "abc"})
            assert "abc" in prompt.messages[0].content.text
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await s.subscribe_resource("demo://notes")
            await s.call_tool("add_note", {"text": "n"})
            with anyio.fail_after(5):
                while not updates:
                    await anyio.sleep(0.02)
    run(body)
    assert progress == [(1, 3, "step 1/3"), (2, 3, "step 2/3"), (3, 3, "step 3/3")]
    assert sampled == ["why?"]
    assert updates == ["demo://notes"]


def test_python_sdk_sse_client_logging_with_everything(everything_server):
    logs: list = []

    async def on_log(params):
        logs.append(params.data)

    async def body():
        async with connect(sse_url(everything_server), logging_callback=on_log) as s:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await s.set_logging_level("info")
            r = await s.call_tool("test_tool_with_logging", {})
            assert r.content[0].text == "Tool with logging executed successfully"
            with anyio.fail_after(5):
                while len(logs) < 3:
                    await anyio.sleep(0.02)
    run(body)
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]


def open_legacy(client: httpx.Client, url: str):
    """GET the SSE path; returns (response context, line iterator, messages URL)."""
    ctx = client.stream("GET", url, headers={"accept": "text/event-stream"})
    r = ctx.__enter__()
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    lines = r.iter_lines()
    assert next(lines) == "event: endpoint"
    data = next(lines)
    assert data.startswith("data: /messages?session_id=")
    return ctx, lines, url.replace("/sse", data[len("data: "):])


def post(client, url, body, **extra):
    return client.post(url, json=body, headers={"content-type": "application/json", **extra})


def test_raw_rules_and_errors(demo_server):
    url = sse_url(demo_server)
    with httpx.Client(timeout=10) as c:
        ctx, lines, messages = open_legacy(c, url)
        try:
            sid = messages.rsplit("=", 1)[1]
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
            assert post(c, messages, init).status_code == 202
            evs = events(lines)
            first = next(evs)
            assert first.message["id"] == 1 and first.message["result"]["protocolVersion"] == "2024-11-05"

            bad = c.post(messages, content=b'{"jsonrpc":"2.0","id":2,', headers={"content-type": "application/json"})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700
            assert post(c, messages, [init]).json()["error"]["code"] == -32600
            r = c.post(messages, content=b"{}", headers={"content-type": "text/plain"})
            assert r.status_code == 415
            r = post(c, messages.split("?")[0], {"jsonrpc": "2.0", "id": 3, "method": "ping"})
            assert r.status_code == 400 and "session_id" in r.json()["error"]["message"]
            r = post(c, messages.split("?")[0] + "?session_id=nope", {"jsonrpc": "2.0", "id": 3, "method": "ping"})
            assert r.status_code == 404 and r.json()["error"]["code"] == -32001
            r = post(c, messages, {"jsonrpc": "2.0", "id": 3, "method": "ping"}, origin="http://evil.example.com")
            assert r.status_code == 403
            r = c.post(url, json={}, headers={"content-type": "application/json"})
            assert r.status_code == 405 and r.headers["allow"] == "GET"
            assert c.get(messages).status_code == 405
            assert c.get(url, headers={"accept": "text/event-stream", "origin": "http://evil.example.com"}).status_code == 403
            # the session id belongs to this transport only
            assert post(c, demo_server.url, {"jsonrpc": "2.0", "id": 4, "method": "ping"},
                        **headers(sid)).status_code == 404
            other = initialize(c, demo_server.url)
            r = post(c, messages.split("?")[0] + f"?session_id={other}", {"jsonrpc": "2.0", "id": 5, "method": "ping"})
            assert r.status_code == 404 and "other transport" in r.json()["error"]["message"]

            # after all that, the session still works, on its stream
            assert post(c, messages, {"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                                      "params": {"name": "echo", "arguments": {"text": "ok"}}}).status_code == 202
            reply = next(evs)
            assert reply.message == {"jsonrpc": "2.0", "id": 6,
                                     "result": {"content": [{"type": "text", "text": "ok"}]}}
        finally:
            ctx.__exit__(None, None, None)


def test_keepalive_comments(start_server):
    server = start_server(None, "--keepalive", "0.2")
    with httpx.Client(timeout=10) as c:
        with c.stream("GET", sse_url(server), headers={"accept": "text/event-stream"}) as r:
            started = time.monotonic()
            comments = 0
            for line in r.iter_lines():
                if line == ": keep-alive":
                    comments += 1
                    if comments == 3:
                        break
            assert 0.4 < time.monotonic() - started < 5


def test_session_ends_after_its_stream_closes():
    async def go():
        runtime = LocalRuntime(demo_app, lifetimes=Lifetimes(legacy_grace=30))
        actor = runtime.create("sse")
        reply = await actor.open_legacy_stream("/messages?session_id=x")
        assert reply.body.startswith(b"event: endpoint\ndata: /messages?session_id=x")
        t0 = time.time()
        await runtime.run_alarms(t0 + 3600)  # the stream is open: no expiry, whatever the time
        assert await runtime.get(actor.session.id) is actor
        reply.connection.detach()
        assert actor.storage.get_alarm() == pytest.approx(t0 + 30, abs=2)
        await runtime.run_alarms(t0 + 10)
        assert await runtime.get(actor.session.id) is actor  # within the grace period
        await runtime.run_alarms(t0 + 31)
        assert await runtime.get(actor.session.id) is None and runtime.expired == 1
    asyncio.run(go())


def test_legacy_and_streamable_sessions_side_by_side(demo_server):
    """Both transports on one port, at once, on the same app."""
    got: list = []

    def legacy():
        with httpx.Client(timeout=10) as c:
            ctx, lines, messages = open_legacy(c, sse_url(demo_server))
            try:
                evs = events(lines)
                post(c, messages, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
                assert next(evs).message["id"] == 0
                post(c, messages, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                   "params": {"name": "echo", "arguments": {"text": "legacy"}}})
                got.append(next(evs).message["result"]["content"][0]["text"])
            finally:
                ctx.__exit__(None, None, None)

    t = threading.Thread(target=legacy)
    t.start()
    with httpx.Client(timeout=10) as c:
        sid = initialize(c, demo_server.url)
        r = c.post(demo_server.url, headers=headers(sid), json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "streamable"}}})
        got.append([e for e in events(r.text.splitlines())][-1].message["result"]["content"][0]["text"])
    t.join(10)
    assert sorted(got) == ["legacy", "streamable"]
