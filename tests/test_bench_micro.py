"""Micro-benchmarks of the hot paths (pytest-benchmark).

The test command runs them; under CI=true timing is disabled (each runs once and is
checked, no time is judged). Speed targets live in `python -m bench`, never here.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.protocol import jsonrpc
from engine.actors.session_actor import SessionActor
from engine.demo import app
from engine.protocol.eventlog import GET_STREAM, EventLog
from engine.protocol.http import HttpConfig
from engine.actors.memory_store import MemoryBackend

CALL = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
INIT = (b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{},"clientInfo":{"name":"b","version":"0"}}}')


def test_codec_decode(benchmark):
    msg = benchmark(jsonrpc.decode, CALL)
    assert msg.method == "tools/call" and msg.params["arguments"] == {"text": "hello"}


def test_codec_encode_response(benchmark):
    body = benchmark(jsonrpc.response, 1, {"content": [{"type": "text", "text": "hello"}]})
    assert body == b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}'


def _actor(json_response: bool) -> tuple[SessionActor, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    actor = SessionActor("bench", app, MemoryBackend().namespace("bench"), HttpConfig(json_response=json_response))
    loop.run_until_complete(actor.post(jsonrpc.decode(INIT)))
    return actor, loop


@pytest.mark.parametrize("json_response, content_type", [(True, "application/json"), (False, "text/event-stream")])
def test_dispatch_tools_call(benchmark, json_response, content_type):
    actor, loop = _actor(json_response)
    ids = iter(range(1, 10**9))

    def call():
        msg = jsonrpc.decode(CALL.replace(b'"id":1', b'"id":%d' % next(ids)))
        return loop.run_until_complete(actor.post(msg))

    reply = benchmark(call)
    assert reply.content_type == content_type and b'"text":"hello"' in reply.body
    loop.close()


def test_eventlog_append(benchmark):
    log = EventLog(MemoryBackend().namespace("b"))
    stream = log.get_stream
    payload = jsonrpc.notification("notifications/progress", {"progressToken": 1, "progress": 1})
    frame = benchmark(log.append, stream, payload)
    assert frame.startswith(b"id: 0:") and frame.endswith(payload + b"\n\n")


def test_eventlog_replay(benchmark):
    log = EventLog(MemoryBackend().namespace("b"))
    stream = log.get_stream
    for i in range(1000):
        log.append(stream, b'{"n":%d}' % i)
    _, frames = benchmark(log.replay, "0:0")
    assert len(frames) == 1000 and frames[-1].startswith(b"id: 0:1000\n")
