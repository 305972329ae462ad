"""Apps written with the official Python SDK, served by the engine unchanged.

``tests/sdk_apps/everything_sdk.py`` is the conformance suite's everything server written
with the SDK's own decorators only. It is served by ``python -m engine serve`` under mcp
2.x (``MCPServer``, this environment) and under mcp 1.x (``FastMCP``, from a venv of its
own beside the engine: ``conftest.sdk_python``), and driven by real peers: both
conformance suites, the official Python client (both eras), the TypeScript SDK client over
both transports, mcp-remote over both transports, and a kill -9 in the middle of a long
tool followed by ``Last-Event-ID``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mcp.types as types
from mcp import Client

from conftest import Server, sdk_python
from engine import App, from_sdk
from engine.app import sdk
from engine.app.loader import AppLoadError, load_app
from sse_client import headers, initialize, long_task_until, resume
from test_client_python_sdk import connect, text_of
from test_conformance import check_suite
from test_peers_mcp_remote import answer_sampling, peer_factory  # noqa: F401  (a fixture)
from test_tasks import session_call, start_task, wait_for

pytestmark = pytest.mark.sdk

APP = "tests.sdk_apps.everything_sdk:mcp"
ROOTS = [types.Root(uri="file:///work/project", name="project")]


@pytest.fixture(scope="module", params=[2, 1], ids=["mcp2", "mcp1"])
def major(request) -> int:
    return request.param


@pytest.fixture(scope="module")
def sdk_server(major):
    server = Server(APP, python=sdk_python(major))
    server.major = major
    yield server
    server.stop()


# -- the conformance suites -------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize("suite", ["0.1.16", "0.2.0-alpha.12 2025-11-25"])
def test_conformance_of_an_sdk_app(sdk_server, node, suite, tmp_path):
    check_suite(node, sdk_server.url, suite, tmp_path)


# -- the official Python client ----------------------------------------------------------------


def test_the_python_client_gets_what_the_sdk_computes(sdk_server):
    """Schemas, names and result shaping are the SDK's; the SDK's Context works through
    the engine (progress, logs under the client's level, sampling, elicitation, roots,
    reading a resource, the lifespan); a tool added at run time is announced and listed;
    the app's own logging/setLevel and subscribe handlers are called."""
    notes: list[Any] = []
    asked: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification):
            notes.append(message.root if hasattr(message, "root") else message)

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(type="text", text="42"))

    async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=ROOTS)

    progress: list[tuple] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def body() -> None:
        async with connect(sdk_server.url, message_handler=on_message, sampling_callback=on_sample,
                           elicitation_callback=on_elicit, list_roots_callback=on_roots) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            simple = tools["test_simple_text"]
            assert simple.description == "Returns a simple text response."
            assert simple.output_schema["properties"] == {"result": {"title": "Result", "type": "string"}}
            assert tools["test_sampling"].input_schema["required"] == ["prompt"]
            assert tools["json_schema_2020_12_tool"].input_schema["$schema"].endswith("2020-12/schema")
            result = await session.call_tool("test_simple_text", {})
            assert result.structured_content == {"result": "This is a simple text response for testing."}
            error = await session.call_tool("test_error_handling", {})
            assert error.is_error and "Error executing tool test_error_handling" in text_of(error)

            done = await session.call_tool("long_task", {"steps": 2, "interval_s": 0.01}, progress_callback=on_progress)
            assert text_of(done) == "long_task finished 2 steps"
            assert progress == [(1, 2, "step 1/2"), (2, 2, "step 2/2")]
            await session.set_logging_level("warning")  # the engine filters; the app's own handler hears it
            await session.call_tool("test_tool_with_logging", {})
            assert text_of(await session.call_tool("log_levels", {})).split(",")[-1] == "warning"
            sampled = await session.call_tool("test_sampling", {"prompt": "meaning?"})
            assert text_of(sampled) == "LLM response: 42"
            elicited = await session.call_tool("test_elicitation", {"message": "who are you?"})
            assert text_of(elicited) == "User response: action=accept, content={'username': 'ada', " \
                                        "'email': 'ada@example.com'}"
            assert asked == ["meaning?", "who are you?"]
            assert text_of(await session.call_tool("show_roots", {})) == "file:///work/project"
            assert text_of(await session.call_tool("read_static", {})) == \
                "This is the content of the static text resource."
            assert text_of(await session.call_tool("lifespan_state", {})) == "started=True lifespans=1"

            name = f"extra_{time.monotonic_ns()}"
            assert text_of(await session.call_tool("add_a_tool", {"name": name})) == f"added {name}"
            assert name in {t.name for t in (await session.list_tools()).tools}
            assert text_of(await session.call_tool(name, {})) == f"I am {name}"
            await session.subscribe_resource("test://watched-resource")
            with anyio.fail_after(8):  # the app's lifespan task updates it every 3 s
                while not any(type(n).__name__ == "ResourceUpdatedNotification" for n in notes):
                    await anyio.sleep(0.05)
            assert any(type(n).__name__ == "ToolListChangedNotification" for n in notes)
            assert not any(type(n).__name__ == "LoggingMessageNotification" for n in notes)  # info < warning

        async with connect(sdk_server.url) as other:  # a second session: the lifespan did not run again
            assert text_of(await other.call_tool("lifespan_state", {})) == "started=True lifespans=1"

    anyio.run(body)


def test_the_python_client_in_2026_mode(sdk_server):
    """The stateless era, for an app that knows nothing of it: the SDK's ctx.elicit becomes
    an input-required round trip that the client's callback answers."""
    async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "bo", "email": "bo@example.com"})

    async def body() -> None:
        with anyio.fail_after(30):
            async with Client(sdk_server.url, elicitation_callback=on_elicit) as client:
                assert client.protocol_version == "2026-07-28"
                result = await client.call_tool("test_simple_text", {})
                assert result.structured_content == {"result": "This is a simple text response for testing."}
                elicited = await client.call_tool("test_elicitation", {"message": "hi"})
                assert elicited.content[0].text == "User response: action=accept, content={'username': 'bo', " \
                                                   "'email': 'bo@example.com'}"
                read = await client.read_resource("test://template/9/data")
                assert read.contents[0].text == '{"id":"9","templateTest":true,"data":"Data for ID: 9"}'

    anyio.run(body)


# -- the TypeScript SDK client, mcp-remote -------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_the_typescript_client(sdk_server, node, transport):
    from test_peers_ts import run_driver

    url = sdk_server.url if transport == "streamable-http" else sdk_server.url.replace("/mcp", "/sse")
    args = ["--sse"] if transport == "sse" else []
    seen = run_driver(node, url, sdk_server, *args, "--scenario", "everything")
    assert seen["transport"] == transport
    assert seen["serverInfo"]["name"] == "sdk-everything"
    assert seen["simpleText"] == "This is a simple text response for testing."
    assert [p["progress"] for p in seen["progress"]] == [0, 50, 100]
    assert seen["toolWithProgress"] == "Tool with progress executed successfully"
    assert seen["sampling"]["result"].startswith("LLM response: LLM says:")


@pytest.mark.peers
@pytest.mark.parametrize("transport", ["http-only", "sse-only"])
def test_mcp_remote(sdk_server, peer_factory, transport):  # noqa: F811
    url = sdk_server.url if transport == "http-only" else sdk_server.url.replace("/mcp", "/sse")
    peer = peer_factory(url, transport)
    init, _ = peer.request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {"sampling": {}},
                                             "clientInfo": {"name": "pytest-stdio", "version": "0"}}, timeout=30)
    assert init["result"]["serverInfo"]["name"] == "sdk-everything"
    peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    tools, _ = peer.request(2, "tools/list", {})
    assert "long_task" in {t["name"] for t in tools["result"]["tools"]}
    done, before = peer.request(3, "tools/call", {"name": "long_task", "arguments": {"steps": 2, "interval_s": 0.01},
                                                  "_meta": {"progressToken": "t"}})
    assert [n["params"]["progress"] for n in before] == [1, 2]
    assert done["result"]["content"][0]["text"] == "long_task finished 2 steps"
    sampled, _ = peer.request(4, "tools/call", {"name": "test_sampling", "arguments": {"prompt": "ping?"}},
                              on_server_request=answer_sampling)
    assert sampled["result"]["content"][0]["text"] == "LLM response: LLM says: ping?"


# -- durability ---------------------------------------------------------------------------------


def test_kill_9_mid_call_of_an_sdk_tool_then_resume(major, tmp_path):
    store = f"sqlite:{tmp_path}/state.db"
    python = sdk_python(major)
    server = Server(APP, "--store", store, python=python)
    try:
        with httpx.Client(timeout=10) as c:
            sid = initialize(c, server.url)
            seen = long_task_until(c, server.url, sid, 1, steps=50, interval=0.05, token="crash", progress=3)
            time.sleep(0.3)
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(5)
            server = Server(APP, "--store", store, python=python)
            rest = resume(c, server.url, sid, seen[-1].id)
            progress = [e.message["params"]["progress"] for e in rest[:-1]]
            assert progress[:2] == [4, 5] and progress == list(range(4, 4 + len(progress)))
            final = rest[-1].message
            assert final["id"] == 1 and final["error"]["code"] == -32603 and "restarted" in final["error"]["message"]
            r = c.post(server.url, headers=headers(sid), json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                               "params": {"name": "test_simple_text", "arguments": {}}})
            assert r.status_code == 200 and "This is a simple text response" in r.text  # the session lives on
    finally:
        server.stop()


def test_tools_of_an_sdk_app_run_as_tasks_on_both_wires(major, client):
    server = Server("tests.sdk_apps.tasked:app", python=sdk_python(major))
    try:
        created = start_task(client, server.url, "long_task", {"steps": 2, "interval_s": 0.1})
        done = wait_for(client, server.url, created["taskId"], {"completed"})
        assert done["result"]["content"][0]["text"] == "long_task finished 2 steps"
        sid = initialize(client, server.url)
        listed = session_call(client, server.url, sid, 1, "tools/list")["result"]["tools"]
        assert {t["name"]: t.get("execution") for t in listed}["long_task"] == {"taskSupport": "optional"}
        task = session_call(client, server.url, sid, 2, "tools/call", {
            "name": "long_task", "arguments": {"steps": 1, "interval_s": 0.01}, "task": {}})["result"]["task"]
        result = session_call(client, server.url, sid, 3, "tasks/result", {"taskId": task["taskId"]})["result"]
        assert result["content"][0]["text"] == "long_task finished 1 steps"
    finally:
        server.stop()


# -- detection and what is said at start ---------------------------------------------------------------


def test_detection_by_type_without_importing_mcp_for_an_engine_app():
    assert sdk.kind(App("x")) is None and sdk.kind(object()) is None
    with pytest.raises(TypeError, match="not an MCP SDK server"):
        from_sdk(object())
    from mcp.server.mcpserver import MCPServer

    class Mine(MCPServer):  # a subclass is still the SDK's server
        pass

    assert sdk.kind(Mine("m")) == "mcp2"
    with pytest.raises(ValueError, match="no tool of this server"):
        from_sdk(Mine("m"), tasks={"nope": "optional"})
    with pytest.raises(AppLoadError, match="not an engine.App or an MCP SDK server"):
        load_app("json:dumps")
    assert load_app(APP).server_info()["name"] == "sdk-everything"


def test_an_engine_serving_an_engine_app_never_imports_mcp():
    code = ("import sys; from engine.app.loader import load_app; load_app('examples.everything:app'); "
            "import engine.local.runtime, engine.actors.front; "
            "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_what_cannot_be_bridged_is_said_at_start(caplog):
    from mcp.server.mcpserver import MCPServer
    from starlette.responses import PlainTextResponse

    server = MCPServer("routes")

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    with caplog.at_level(logging.WARNING, logger="engine"):
        from_sdk(server)
    assert "its custom HTTP routes (/health) are not served by the engine" in caplog.text
