"""The App API and the actor, driven with messages and no sockets."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Literal, Optional

import msgspec
import pytest

from engine import App, Context, Image, Resource, ToolResult
from engine.actors.session_actor import SessionActor
from engine.protocol.http import HttpConfig
from engine.protocol.jsonrpc import decode, encode
from engine.actors.memory_store import MemoryBackend


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(msgspec.Struct):
    street: str
    city: str = "Paris"


class Weather(msgspec.Struct):
    temperature: float
    summary: str


app = App("unit", "1.0")


@app.tool()
def kitchen_sink(
    name: str,
    count: Annotated[int, msgspec.Meta(ge=1, le=10, description="How many")] = 3,
    note: Optional[str] = None,
    mode: Literal["fast", "slow"] = "fast",
    color: Color = Color.RED,
    address: Optional[Address] = None,
    tags: list[str] = [],
) -> str:
    """Exercise every kind of hint."""
    return f"{name}/{count}/{note}/{mode}/{color.value}/{address.city if address else '-'}/{','.join(tags)}"


@app.tool()
def weather(city: str) -> Weather:
    """Structured output from a Struct return annotation."""
    return Weather(21.5, f"sunny in {city}")


@app.tool(structured=True)
def count_words(text: str) -> int:
    return len(text.split())


@app.tool()
def picture() -> list:
    return ["look:", Image(b"\x89PNG", "image/png"), Resource("x://r", text="hi", mime_type="text/plain")]


@app.tool()
def explicit() -> ToolResult:
    return ToolResult(content="partial", is_error=True)


@app.tool()
async def slow(ctx: Context, seconds: float = 5) -> str:
    await asyncio.sleep(seconds)
    return "done"


@app.tool()
async def ask(ctx: Context, q: str) -> str:
    return (await ctx.sample(q)).text


@app.resource("mem://{user}/profile", mime_type="application/json")
def profile(user: str) -> dict:
    return {"user": user}


@app.resource("mem://blob")
def blob() -> bytes:
    return b"\x00\x01"


@app.prompt(description="greet someone")
def greet(who: Annotated[str, msgspec.Meta(description="the person")], tone: str = "warm") -> str:
    return f"Greet {who} in a {tone} way"


def test_input_schema_from_hints():
    schema = app.tools["kitchen_sink"].listing["inputSchema"]
    props = schema["properties"]
    assert schema["type"] == "object" and schema["required"] == ["name"]
    assert props["name"] == {"type": "string"}
    assert props["count"] == {"type": "integer", "minimum": 1, "maximum": 10, "description": "How many", "default": 3}
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}] and props["note"]["default"] is None
    assert props["mode"] == {"enum": ["fast", "slow"], "default": "fast"}
    assert props["color"]["$ref"] == "#/$defs/Color" and sorted(schema["$defs"]["Color"]["enum"]) == ["blue", "red"]
    assert schema["$defs"]["Address"]["required"] == ["street"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}  # factory defaults carry no "default"
    assert app.tools["kitchen_sink"].listing["description"] == "Exercise every kind of hint."
    assert "outputSchema" not in app.tools["kitchen_sink"].listing


def test_output_schema():
    out = app.tools["weather"].listing["outputSchema"]
    assert out["type"] == "object" and set(out["required"]) == {"temperature", "summary"}
    wrapped = app.tools["count_words"].listing["outputSchema"]
    assert wrapped == {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}
    assert "outputSchema" not in app.tools["picture"].listing


class Harness:
    """An actor fed decoded messages, as a runtime adapter would."""

    def __init__(self, capabilities=None, version="2025-11-25", json_response=False):
        self.actor = SessionActor("s1", app, MemoryBackend().namespace("s"), HttpConfig(json_response=json_response))
        self.capabilities = capabilities or {}
        self.version = version

    async def post(self, msg: dict):
        return await self.actor.post(decode(encode(msg)))

    async def request(self, rid, method, params=None) -> dict:
        reply = await self.post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        body = reply.body
        if reply.connection is not None:
            while True:
                chunk = await asyncio.wait_for(reply.connection.next(), 5)
                if chunk is None:
                    break
                body += chunk
        frames = [f for f in body.split(b"\n\n") if b"data: {" in f]
        return msgspec.json.decode(frames[-1].split(b"data: ", 1)[1]) if frames else msgspec.json.decode(body)

    async def start(self):
        await self.request(0, "initialize", {"protocolVersion": self.version, "capabilities": self.capabilities,
                                             "clientInfo": {"name": "t", "version": "0"}})
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_tool_calls_map_results():
    async def go():
        h = await Harness().start()
        r = await h.request(1, "tools/call", {"name": "kitchen_sink", "arguments": {
            "name": "n", "count": 2, "mode": "slow", "color": "blue", "address": {"street": "s"}, "tags": ["a", "b"]}})
        assert r["result"]["content"] == [{"type": "text", "text": "n/2/None/slow/blue/Paris/a,b"}]
        bad = await h.request(2, "tools/call", {"name": "kitchen_sink", "arguments": {"name": "n", "count": 11}})
        assert bad["result"]["isError"] is True and "count" in bad["result"]["content"][0]["text"]
        missing = await h.request(3, "tools/call", {"name": "kitchen_sink", "arguments": {}})
        assert missing["result"]["isError"] is True and "name" in missing["result"]["content"][0]["text"]
        w = await h.request(4, "tools/call", {"name": "weather", "arguments": {"city": "Oslo"}})
        assert w["result"]["structuredContent"] == {"temperature": 21.5, "summary": "sunny in Oslo"}
        assert msgspec.json.decode(w["result"]["content"][0]["text"]) == w["result"]["structuredContent"]
        c = await h.request(5, "tools/call", {"name": "count_words", "arguments": {"text": "a b c"}})
        assert c["result"]["structuredContent"] == {"result": 3}
        p = await h.request(6, "tools/call", {"name": "picture"})
        assert [b["type"] for b in p["result"]["content"]] == ["text", "image", "resource"]
        assert p["result"]["content"][1]["data"] == "iVBORw=="
        e = await h.request(7, "tools/call", {"name": "explicit"})
        assert e["result"] == {"content": [{"type": "text", "text": "partial"}], "isError": True}
    run(go())


def test_resources_and_prompts():
    async def go():
        h = await Harness().start()
        r = await h.request(1, "resources/read", {"uri": "mem://ann/profile"})
        assert r["result"]["contents"] == [{"uri": "mem://ann/profile", "mimeType": "application/json",
                                            "text": '{"user":"ann"}'}]
        b = await h.request(2, "resources/read", {"uri": "mem://blob"})
        assert b["result"]["contents"][0]["blob"] == "AAE="
        nf = await h.request(3, "resources/read", {"uri": "mem://nothing"})
        assert nf["error"]["code"] == -32002
        t = await h.request(4, "resources/templates/list")
        assert t["result"]["resourceTemplates"][0]["uriTemplate"] == "mem://{user}/profile"
        pl = await h.request(5, "prompts/list")
        assert pl["result"]["prompts"][0]["arguments"] == [
            {"name": "who", "description": "the person", "required": True},
            {"name": "tone", "description": "tone", "required": False}]
        g = await h.request(6, "prompts/get", {"name": "greet", "arguments": {"who": "Bo"}})
        assert g["result"]["messages"] == [{"role": "user", "content": {"type": "text", "text": "Greet Bo in a warm way"}}]
        bad = await h.request(7, "prompts/get", {"name": "greet", "arguments": {}})
        assert bad["error"]["code"] == -32602
    run(go())


def test_sampling_round_trip_and_capability_check():
    async def go():
        h = await Harness(capabilities={"sampling": {}}).start()
        reply = await h.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                              "params": {"name": "ask", "arguments": {"q": "why?"}}})
        chunk = await asyncio.wait_for(reply.connection.next(), 5)
        req = msgspec.json.decode(chunk.split(b"data: ", 1)[1])
        assert req["method"] == "sampling/createMessage"
        assert req["params"]["messages"][0]["content"]["text"] == "why?"
        accepted = await h.post({"jsonrpc": "2.0", "id": req["id"], "result": {
            "role": "assistant", "model": "m", "content": {"type": "text", "text": "because"}}})
        assert accepted.status == 202
        rest = b""
        while (chunk := await asyncio.wait_for(reply.connection.next(), 5)) is not None:
            rest += chunk
        assert b'"text":"because"' in rest
        h2 = await Harness().start()
        r = await h2.request(1, "tools/call", {"name": "ask", "arguments": {"q": "x"}})
        assert r["result"]["isError"] is True and "sampling" in r["result"]["content"][0]["text"]
    run(go())


def test_cancel_and_close_end_running_work():
    async def go():
        h = await Harness().start()
        reply = await h.post({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "slow"}})
        assert 9 in h.actor.tasks
        await h.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}})
        assert await asyncio.wait_for(reply.connection.next(), 2) is None  # closed with no response
        assert 9 not in h.actor.tasks and 9 not in (h.actor.session.in_flight or {})
        reply = await h.post({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "slow"}})
        h.actor.close()
        assert await asyncio.wait_for(reply.connection.next(), 2) is None
        await asyncio.sleep(0)
        assert not h.actor.tasks
    run(go())


def test_ping_and_set_level_results_are_empty():
    async def go():
        h = await Harness().start()
        assert (await h.request(1, "ping"))["result"] == {}
        assert (await h.request(2, "logging/setLevel", {"level": "info"}))["result"] == {}
        assert (await h.request(3, "logging/setLevel", {"level": "nope"}))["error"]["code"] == -32602
    run(go())


def test_list_changed_is_announced_to_ready_sessions():
    async def go():
        local = App("dyn")
        actor = SessionActor("s", local, MemoryBackend().namespace("s"), HttpConfig())
        local.listen(actor.announce)
        await actor.post(decode(encode({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})))
        local.tool()(lambda: "x")
        stream, frames = actor.log.replay("0:0")
        assert b"notifications/tools/list_changed" in frames[0]
        assert local.listing("tools")["tools"][0]["name"] == "<lambda>"
    run(go())


def test_bad_tool_definitions_fail_at_registration():
    with pytest.raises(TypeError):
        App().tool()(lambda *args: None)


@app.tool(thread=True)
def blocking(seconds: float = 0.2) -> str:
    import time

    time.sleep(seconds)
    return "slept"


def test_thread_tools_do_not_block_the_loop():
    async def go():
        h = await Harness().start()
        reply = await h.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "blocking"}})
        assert reply.connection is not None  # runs as a task, not inline
        ping = await asyncio.wait_for(h.request(2, "ping"), 0.1)  # answered while the thread sleeps
        assert ping["result"] == {}
        body = b""
        while (chunk := await asyncio.wait_for(reply.connection.next(), 5)) is not None:
            body += chunk
        assert b'"text":"slept"' in body
    run(go())
    with pytest.raises(TypeError):
        App().tool(thread=True)(slow)
