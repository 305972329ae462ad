"""The shared HTTP front, driven in-process through each runtime's writer.

The same requests go through :class:`engine.actors.front.Front` and are streamed out by the
local server's ASGI writer and by the Worker's JavaScript-stream writer (with a stand-in
for the JS writer object), so both runtimes are held to one set of expectations: the
same status, headers and bytes, and the same behaviour when the peer goes away.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

from conftest import ROOT
from engine.actors.front import Front, str_headers
from engine.actors.memory_store import MemoryBackend
from engine.actors.settings import Settings
from engine.demo import app
from engine.local.asgi import _AsgiWriter
from engine.local.runtime import LocalRuntime


def _load_worker_streams():
    spec = importlib.util.spec_from_file_location("worker_streams", ROOT / "worker" / "streams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JsStreamWriter = _load_worker_streams().JsStreamWriter


class FakeJsWriter:
    """Stands in for a WritableStreamDefaultWriter: write/close return awaitables; after
    the reader side is cancelled, writes fail as a JsException would."""

    def __init__(self, fail_after: int | None = None):
        self.chunks: list[bytes] = []
        self.closed = False
        self.fail_after = fail_after

    async def write(self, data):
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise RuntimeError("TypeError: the stream was cancelled")  # a JsException stands here
        self.chunks.append(bytes(data))

    async def close(self):
        self.closed = True


class AsgiCapture:
    def __init__(self, fail_after: int | None = None):
        self.chunks: list[bytes] = []
        self.closed = False
        self.fail_after = fail_after

    async def __call__(self, message):
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise ConnectionResetError("the peer went away")
        if message.get("more_body"):
            self.chunks.append(message["body"])
        else:
            self.closed = True


def asgi_writer(fail_after=None):
    capture = AsgiCapture(fail_after)
    return _AsgiWriter(capture), capture


def js_writer(fail_after=None):
    fake = FakeJsWriter(fail_after)
    return JsStreamWriter(fake, lambda b: b), fake


WRITERS = {"asgi": asgi_writer, "worker": js_writer}

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json",
           "host": "127.0.0.1:8000"}


def body_of(payload: dict):
    raw = json.dumps(payload).encode()

    async def read(limit: int) -> bytes:
        return raw

    return read


async def _initialize(front: Front, runtime: LocalRuntime) -> str:
    response = await front.handle("POST", "/mcp", "", HEADERS, body_of({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        runtime)
    assert response.status == 200
    return str_headers(response.headers)["mcp-session-id"]


def _frames(chunks: list[bytes]) -> list[dict]:
    out = []
    for block in b"".join(chunks).decode().split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data and data[0].strip():
            out.append(json.loads(data[0]))
    return out


@pytest.mark.parametrize("kind", WRITERS)
def test_a_streamed_call_reaches_each_runtime_writer_the_same_way(kind):
    async def main():
        runtime = LocalRuntime(app, backend=MemoryBackend())
        front = Front(Settings())
        sid = await _initialize(front, runtime)
        response = await front.handle("POST", "/mcp", "", {**HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"},
                                      body_of({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                                          "name": "long_task", "arguments": {"steps": 3, "interval_s": 0.01},
                                          "_meta": {"progressToken": "p"}}}), runtime)
        headers = str_headers(response.headers)
        assert response.status == 200 and response.stream is not None
        assert headers["content-type"] == "text/event-stream"
        assert headers["x-accel-buffering"] == "no" and headers["cache-control"] == "no-cache, no-transform"
        writer, sink = WRITERS[kind]()
        await front.pump(response, writer)
        assert sink.closed
        messages = _frames(sink.chunks)
        assert [m["params"]["progress"] for m in messages[:-1]] == [1, 2, 3]
        assert "finished 3 steps" in messages[-1]["result"]["content"][0]["text"]
        actor = runtime.actors[sid]
        assert not actor.connections  # detached once the stream ended
        return b"".join(sink.chunks)

    body = asyncio.run(main())
    assert body.startswith(b"id: 1:1\nretry: 1000\ndata: \n\n")  # the priming event first


@pytest.mark.parametrize("kind", WRITERS)
def test_a_peer_that_goes_away_ends_the_pump_and_the_events_stay_replayable(kind):
    async def main():
        runtime = LocalRuntime(app, backend=MemoryBackend())
        front = Front(Settings())
        sid = await _initialize(front, runtime)
        session = {**HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        response = await front.handle("POST", "/mcp", "", session, body_of({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "long_task", "arguments": {"steps": 4, "interval_s": 0.01}, "_meta": {"progressToken": 1}}}),
            runtime)
        writer, sink = WRITERS[kind](fail_after=2)  # the priming event and one progress, then gone
        await front.pump(response, writer)
        assert not sink.closed and len(sink.chunks) == 2
        actor = runtime.actors[sid]
        assert 1 not in actor.connections
        await asyncio.sleep(0.1)  # the handler runs on and logs the rest
        replay = await front.handle("GET", "/mcp", "", {**session, "accept": "text/event-stream",
                                                          "last-event-id": "1:2"}, body_of({}), runtime)
        return _frames([replay.body])

    messages = asyncio.run(main())
    assert [m["params"]["progress"] for m in messages[:-1]] == [2, 3, 4]
    assert "finished 4 steps" in messages[-1]["result"]["content"][0]["text"]


def test_errors_preflight_and_cors_come_from_the_front():
    async def main():
        runtime = LocalRuntime(app, backend=MemoryBackend())
        front = Front(Settings())
        origin = {**HEADERS, "origin": "http://localhost:3000"}
        refused = await front.handle("POST", "/mcp", "", {**origin, "accept": "application/json"}, body_of({}), runtime)
        assert refused.status == 406
        assert str_headers(refused.headers)["access-control-allow-origin"] == "http://localhost:3000"
        assert json.loads(refused.body)["error"]["code"] == -32600
        evil = await front.handle("POST", "/mcp", "", {**HEADERS, "origin": "http://evil.example"}, body_of({}), runtime)
        assert evil.status == 403 and "access-control-allow-origin" not in str_headers(evil.headers)
        preflight = await front.handle("OPTIONS", "/mcp", "", {**origin, "access-control-request-method": "POST"},
                                       body_of({}), runtime)
        assert preflight.status == 204 and "mcp-session-id" in str_headers(preflight.headers)[
            "access-control-allow-headers"]
        unknown = await front.handle("POST", "/mcp", "", {**HEADERS, "mcp-session-id": "nope"},
                                     body_of({"jsonrpc": "2.0", "id": 3, "method": "ping"}), runtime)
        assert unknown.status == 404 and json.loads(unknown.body)["id"] == 3

        async def too_big(limit: int) -> bytes:
            return b"x" * (limit + 1)

        big = await front.handle("POST", "/mcp", "", HEADERS, too_big, runtime)
        assert big.status == 413

    asyncio.run(main())


def test_the_worker_front_answers_at_admit_without_an_actor():
    """The Worker's fetch handler only admits (it has no actors): a bad request is answered
    there, a good one comes back routed, with its message and raw body to forward."""

    async def main():
        front = Front(Settings())
        admitted = await front.admit("GET", "/mcp", "", {**HEADERS, "accept": "application/json"}, body_of({}))
        assert not isinstance(admitted, tuple) and admitted.status == 406
        admitted = await front.admit("POST", "/mcp", "", HEADERS, body_of({
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}))
        route, msg, body = admitted
        assert route.action == "open" and msg.method == "initialize" and body

    asyncio.run(main())
