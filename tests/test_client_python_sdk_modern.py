"""End-to-end: the official Python SDK (``mcp`` 2.3.0) in its 2026-07-28 mode.

``mcp.Client`` pinned to ``mode="2026-07-28"`` (no handshake, ``_meta`` on every request)
and in its default ``mode="auto"`` (it probes ``server/discover`` and adopts 2026-07-28
when the server offers it) against a real ``python -m engine serve`` subprocess: a plain
tool, a tool that asks the user (an input-required round trip answered by the SDK's
elicitation callback), sampling, progress, logging, and a listen stream.
"""

from __future__ import annotations

from typing import Any

import anyio

import mcp.types as types
from mcp import Client

from test_client_python_sdk import run, text_of

MODERN = "2026-07-28"


def test_pinned_modern_mode_calls_a_plain_tool(everything_server):
    async def body():
        async with Client(everything_server.url, mode=MODERN) as client:
            assert client.protocol_version == MODERN
            tools = await client.list_tools()
            assert tools.tools[0].name == "test_simple_text"
            result = await client.call_tool("test_simple_text", {})
            assert text_of(result) == "This is a simple text response for testing."
            image = await client.call_tool("test_image_content", {})
            assert image.content[0].type == "image" and image.content[0].mime_type == "image/png"
            read = await client.read_resource("test://template/42/data")
            assert '"id":"42"' in read.contents[0].text

    run(body)


def test_auto_mode_adopts_2026_and_answers_an_elicitation_round_trip(everything_server):
    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        answer = {"color": "teal"} if "colour" in params.message else {"name": "Alice"}
        return types.ElicitResult(action="accept", content=answer)

    async def body():
        async with Client(everything_server.url, elicitation_callback=on_elicit) as client:
            assert client.protocol_version == MODERN  # the probe found the stateless era
            result = await client.call_tool("test_input_required_result_elicitation", {})
            assert text_of(result) == "Hello, Alice!"
            two_rounds = await client.call_tool("test_input_required_result_multi_round", {})
            assert text_of(two_rounds) == "Alice likes teal"  # the callback answered both rounds

    run(body)
    assert asked == ["What is your name?", "What is your name?", "What is your favourite colour?"]


def test_modern_sampling_roots_progress_and_logs(everything_server):
    progress: list[float] = []
    logs: list[str] = []

    async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", model="m", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text="Paris"))

    async def on_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def body():
        async with Client(everything_server.url, mode=MODERN, sampling_callback=on_sample, list_roots_callback=on_roots,
                          logging_callback=on_log, log_level="info") as client:
            sampled = await client.call_tool("test_input_required_result_sampling", {})
            assert text_of(sampled) == "The model says: Paris"
            roots = await client.call_tool("test_input_required_result_list_roots", {})
            assert text_of(roots) == "Roots: file:///work"
            done = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert text_of(done) == "Tool with progress executed successfully"
            logged = await client.call_tool("test_logging_tool", {})
            assert text_of(logged) == "Logging tool finished"

    run(body)
    assert progress == [0, 50, 100]
    assert logs == ["logging tool: info", "logging tool: warning"]


def test_modern_listen_stream_hears_a_tools_change(everything_server):
    heard: list = []

    async def body():
        async with Client(everything_server.url, mode=MODERN) as client, Client(everything_server.url, mode=MODERN) as other:
            async with client.listen(tools_list_changed=True) as subscription:
                await other.call_tool("test_trigger_tool_change", {})
                with anyio.fail_after(5):
                    async for event in subscription:
                        heard.append(event)
                        break

    run(body)
    assert [type(e).__name__ for e in heard] == ["ToolsListChanged"], heard
