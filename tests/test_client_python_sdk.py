"""End-to-end: the official Python SDK (``mcp`` 2.3.0) as a client of our server.

Every test drives a real ``python -m engine serve`` subprocess over Streamable HTTP with
``mcp.client.streamable_http.streamable_http_client`` and ``mcp.ClientSession`` (or the
high-level ``mcp.Client``), and asserts exact values. Each test runs its coroutine under
``anyio.fail_after`` and uses bounded HTTP and request timeouts, so none can hang.
"""

from __future__ import annotations

import re
import time
import warnings
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import anyio
import httpx2
import pytest

import mcp.types as types
from mcp import Client, ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import ClientMessageMetadata

#: Upper bound for a whole test's async body.
TEST_TIMEOUT = 30.0
#: Upper bound for one request's answer (ClientSession read timeout).
REQUEST_TIMEOUT = 15.0
PROTOCOL_VERSION = "2025-11-25"
SESSION_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
TOKEN_RE = re.compile(r"^(\d+):(\d+)$")
EVERYTHING_LOGS = ["Tool execution started", "Tool processing data", "Tool execution completed"]


def run(fn: Callable[[], Awaitable[Any]], timeout: float = TEST_TIMEOUT) -> Any:
    """Run ``fn()`` on a fresh event loop, failing if it takes longer than ``timeout``."""

    async def main() -> Any:
        with anyio.fail_after(timeout):
            return await fn()

    return anyio.run(main)


def http_client(**kwargs: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=httpx2.Timeout(10.0, read=REQUEST_TIMEOUT * 2), **kwargs)


@asynccontextmanager
async def connect(url: str, *, initialize: bool = True, event_hooks: dict | None = None,
                  **session_kwargs: Any) -> AsyncIterator[ClientSession]:
    """A ClientSession over Streamable HTTP, initialized unless told otherwise."""
    async with http_client(event_hooks=event_hooks or {}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(
                read, write, read_timeout_seconds=REQUEST_TIMEOUT,
                client_info=types.Implementation(name="e2e-python-sdk", version="0.0.0"),
                **session_kwargs,
            ) as session:
                if initialize:
                    await session.initialize()
                yield session


def text_of(result: Any) -> str:
    assert len(result.content) == 1, result
    assert result.content[0].type == "text", result
    return result.content[0].text


async def ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    """A progress callback: passing one makes the SDK send _meta.progressToken."""


# -- 1. initialize ------------------------------------------------------------------------


def test_initialize_negotiates_latest_version_and_capabilities(demo_server):
    async def body():
        async with connect(demo_server.url, initialize=False) as session:
            init = await session.initialize()
            assert init.protocol_version == PROTOCOL_VERSION
            assert session.protocol_version == PROTOCOL_VERSION
            assert init.server_info.name == "mcp-actors-demo"
            assert init.server_info.version == "0.1.0"
            assert init.instructions == "A demo of mcp-actors: try echo and long_task."
            caps = init.capabilities
            assert caps.tools is not None
            assert caps.resources is not None and caps.resources.subscribe is True
            assert caps.prompts is not None
            assert caps.logging is not None
            assert caps.completions is not None
            assert session.server_capabilities == caps
            await session.send_ping()

    run(body)


# -- 2. tools -----------------------------------------------------------------------------


def test_tools_list_call_and_errors(demo_server):
    async def body():
        async with connect(demo_server.url) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert {"echo", "add", "long_task", "add_note", "ask_llm", "confirm", "show_roots"} <= set(tools)
            echo = tools["echo"]
            assert echo.description == "Return the text unchanged (the benchmark's tool)."
            assert echo.input_schema == {
                "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
            }

            result = await session.call_tool("echo", {"text": "hello, world"})
            assert result.is_error is False
            assert text_of(result) == "hello, world"

            result = await session.call_tool("add", {"a": 2, "b": 3.5})
            assert result.is_error is False
            assert text_of(result) == "5.5"

            with pytest.raises(MCPError) as excinfo:
                await session.call_tool("no_such_tool", {})
            assert excinfo.value.code == -32602
            assert excinfo.value.message == "Unknown tool: 'no_such_tool'; tools/list names the tools"

            result = await session.call_tool("echo", {"text": 123})
            assert result.is_error is True
            message = text_of(result)
            assert "echo" in message and "text" in message, message
            assert message == "Invalid arguments for tool echo: Expected `str`, got `int` - at `$.text`"

            result = await session.call_tool("echo", {})
            assert result.is_error is True
            assert "text" in text_of(result)

            # The session still works after the errors.
            assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"

    run(body)


# -- 3. progress ------------------------------------------------------------------------------


def test_progress_notifications(demo_server):
    async def body():
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with connect(demo_server.url) as session:
            result = await session.call_tool(
                "long_task", {"steps": 3, "interval_s": 0.05}, progress_callback=on_progress,
            )
            assert result.is_error is False
            assert re.fullmatch(r"long_task finished 3 steps in \d+\.\d\d s", text_of(result)), text_of(result)
            assert [p for p, _, _ in seen] == [1, 2, 3]
            assert [t for _, t, _ in seen] == [3, 3, 3]
            assert [m for _, _, m in seen] == ["step 1/3", "step 2/3", "step 3/3"]

    run(body)


# -- 4. server-to-client requests ---------------------------------------------------------------


def test_sampling_callback(demo_server):
    async def body():
        requests: list[types.CreateMessageRequestParams] = []

        async def sampling(ctx, params: types.CreateMessageRequestParams):
            requests.append(params)
            return types.CreateMessageResult(
                role="assistant", model="fake-llm", stop_reason="endTurn",
                content=types.TextContent(type="text", text="LLM says: " + params.messages[0].content.text),
            )

        async with connect(demo_server.url, sampling_callback=sampling) as session:
            result = await session.call_tool("ask_llm", {"question": "What is 2+2?"})
            assert result.is_error is False
            assert text_of(result) == "LLM says: What is 2+2?"
        assert len(requests) == 1
        params = requests[0]
        assert params.max_tokens == 200
        assert len(params.messages) == 1
        assert params.messages[0].role == "user"
        assert params.messages[0].content.text == "What is 2+2?"

    run(body)


@pytest.mark.parametrize(
    ("action", "content", "expected"),
    [
        ("accept", {"confirm": True}, "confirmed: deploy"),
        ("accept", {"confirm": False}, "not confirmed (accept): deploy"),
        ("decline", None, "not confirmed (decline): deploy"),
        ("cancel", None, "not confirmed (cancel): deploy"),
    ],
)
def test_elicitation_callback(demo_server, action, content, expected):
    async def body():
        requests: list[Any] = []

        async def elicit(ctx, params):
            requests.append(params)
            return types.ElicitResult(action=action, content=content)

        async with connect(demo_server.url, elicitation_callback=elicit) as session:
            result = await session.call_tool("confirm", {"action": "deploy"})
            assert result.is_error is False
            assert text_of(result) == expected
        assert len(requests) == 1
        params = requests[0]
        assert params.message == "Do you want to deploy?"
        assert params.requested_schema == {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "description": "Go ahead?"}},
            "required": ["confirm"],
        }

    run(body)


def test_roots_callback(demo_server):
    async def body():
        calls = 0

        async def roots(ctx):
            nonlocal calls
            calls += 1
            return types.ListRootsResult(roots=[
                types.Root(uri="file:///tmp/project-a", name="a"),
                types.Root(uri="file:///tmp/project-b", name="b"),
            ])

        async with connect(demo_server.url, list_roots_callback=roots) as session:
            result = await session.call_tool("show_roots", {})
            assert result.is_error is False
            assert text_of(result) == "file:///tmp/project-a\nfile:///tmp/project-b"
        assert calls == 1

    run(body)


def test_server_request_without_client_capability_is_a_tool_error(demo_server):
    """No sampling callback means no sampling capability: ask_llm fails, the session lives on."""

    async def body():
        async with connect(demo_server.url) as session:
            result = await session.call_tool("ask_llm", {"question": "anyone?"})
            assert result.is_error is True
            assert text_of(result) == (
                "The client did not declare the 'sampling' capability, so the server cannot request LLM sampling"
            )
            assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"

    run(body)


def test_cancelled_call_leaves_the_session_usable(demo_server):
    """Abandoning a call makes the SDK send notifications/cancelled; the session carries on."""

    async def body():
        async with connect(demo_server.url) as session:
            started = time.monotonic()
            with anyio.move_on_after(0.3) as scope:
                await session.call_tool("long_task", {"steps": 100, "interval_s": 0.1})
            assert scope.cancelled_caught
            assert time.monotonic() - started < 8  # not the 10 s the call would run
            assert text_of(await session.call_tool("echo", {"text": "after cancel"})) == "after cancel"
            result = await session.call_tool("long_task", {"steps": 1, "interval_s": 0.01})
            assert text_of(result).startswith("long_task finished 1 steps in ")

    run(body)


# -- 5. resources, prompts, completion --------------------------------------------------------------


def test_resources(demo_server):
    async def body():
        async with connect(demo_server.url) as session:
            resources = {r.uri: r for r in (await session.list_resources()).resources}
            assert set(resources) == {"demo://about", "demo://notes"}
            assert resources["demo://about"].mime_type == "text/markdown"
            assert resources["demo://about"].description == "What this server is"

            templates = (await session.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["demo://greeting/{name}"]
            assert templates[0].mime_type == "text/plain"

            about = (await session.read_resource("demo://about")).contents
            assert len(about) == 1
            assert about[0].uri == "demo://about"
            assert about[0].mime_type == "text/markdown"
            assert about[0].text == "# mcp-actors demo\nSessions live in actors; streams survive disconnects.\n"

            greeting = (await session.read_resource("demo://greeting/Ann")).contents
            assert len(greeting) == 1
            assert greeting[0].uri == "demo://greeting/Ann"
            assert greeting[0].mime_type == "text/plain"
            assert greeting[0].text == "Hello, Ann!"

            with pytest.raises(MCPError) as excinfo:
                await session.read_resource("demo://no-such-thing")
            assert excinfo.value.code == -32002
            assert excinfo.value.data == {"uri": "demo://no-such-thing"}

    run(body)


def test_prompts_and_completion(demo_server):
    async def body():
        async with connect(demo_server.url) as session:
            prompts = (await session.list_prompts()).prompts
            assert [p.name for p in prompts] == ["summarize"]
            assert prompts[0].description == "Ask for a short summary of a text"
            assert [(a.name, a.required) for a in prompts[0].arguments] == [("text", True)]

            prompt = await session.get_prompt("summarize", {"text": "MCP is a protocol."})
            assert prompt.description == "Ask for a short summary of a text"
            assert len(prompt.messages) == 1
            assert prompt.messages[0].role == "user"
            assert prompt.messages[0].content.text == (
                "Summarize the following text in one paragraph:\n\nMCP is a protocol."
            )

            ref = types.PromptReference(type="ref/prompt", name="summarize")
            completion = (await session.complete(ref, {"name": "text", "value": "the"})).completion
            assert completion.values == ["the README", "the changelog"]
            completion = (await session.complete(ref, {"name": "text", "value": "th"})).completion
            assert completion.values == ["the README", "the changelog", "this file"]
            completion = (await session.complete(ref, {"name": "text", "value": "zzz"})).completion
            assert completion.values == []

    run(body)


# -- 6. subscriptions ------------------------------------------------------------------------------


def test_resource_subscription_and_unsubscription(demo_server):
    async def body():
        send, receive = anyio.create_memory_object_stream[types.ResourceUpdatedNotification](100)

        async def on_message(message) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                await send.send(message)

        async with connect(demo_server.url, message_handler=on_message) as session:
            before = (await session.read_resource("demo://notes")).contents[0].text
            count = len(before.split("\n")) if before else 0

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.subscribe_resource("demo://notes")

            result = await session.call_tool("add_note", {"text": "first note"})
            assert text_of(result) == f"{count + 1} note(s)"
            with anyio.fail_after(5):
                notification = await receive.receive()
            assert notification.method == "notifications/resources/updated"
            assert notification.params.uri == "demo://notes"
            after = (await session.read_resource("demo://notes")).contents[0].text
            assert after.split("\n")[-1] == "first note"

            # Exactly one notification for one change.
            with anyio.move_on_after(0.5):
                extra = await receive.receive()
                pytest.fail(f"unexpected second notification: {extra}")

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.unsubscribe_resource("demo://notes")

            result = await session.call_tool("add_note", {"text": "second note"})
            assert text_of(result) == f"{count + 2} note(s)"
            with anyio.move_on_after(1.0):
                extra = await receive.receive()
                pytest.fail(f"notification after unsubscribe: {extra}")

    run(body)


# -- 7. logging ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "expected"), [("debug", EVERYTHING_LOGS), ("info", EVERYTHING_LOGS),
                                                 ("warning", []), ("error", [])])
def test_logging_level_filters_log_messages(everything_server, level, expected):
    async def body():
        logs: list[types.LoggingMessageNotificationParams] = []

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            logs.append(params)

        async with connect(everything_server.url, logging_callback=on_log) as session:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.set_logging_level(level)
            result = await session.call_tool("test_tool_with_logging", {})
            assert text_of(result) == "Tool with logging executed successfully"
            # The logs travel on the call's own stream, before its result; allow the
            # dispatcher a moment to run the callbacks, then require the exact list.
            with anyio.move_on_after(2.0):
                while len(logs) < len(expected):
                    await anyio.sleep(0.01)
            await session.send_ping()
            await anyio.sleep(0.2)
            assert [p.data for p in logs] == expected
            assert all(p.level == "info" for p in logs)

    run(body)


def test_logging_rejects_unknown_level(everything_server):
    async def body():
        async with connect(everything_server.url) as session:
            with pytest.raises(MCPError) as excinfo:
                # Bypass the SDK's Literal type: send the raw request.
                await session.send_request(
                    types.SetLevelRequest(params=types.SetLevelRequestParams.model_construct(level="loud")),
                    types.EmptyResult,
                )
            assert excinfo.value.code == -32602

    run(body)


# -- 8. --json-response ----------------------------------------------------------------------------------


def test_basic_flow_with_json_response(start_server):
    server = start_server(None, "--json-response")

    async def body():
        post_types: list[tuple[int, str]] = []

        async def on_response(response: httpx2.Response) -> None:
            if response.request.method == "POST":
                post_types.append((response.status_code, response.headers.get("content-type", "")))

        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        async with connect(server.url, initialize=False, event_hooks={"response": [on_response]}) as session:
            init = await session.initialize()
            assert init.protocol_version == PROTOCOL_VERSION
            assert init.server_info.name == "mcp-actors-demo"
            assert text_of(await session.call_tool("echo", {"text": "json"})) == "json"
            result = await session.call_tool(
                "long_task", {"steps": 3, "interval_s": 0.05}, progress_callback=on_progress,
            )
            assert re.fullmatch(r"long_task finished 3 steps in \d+\.\d\d s", text_of(result))
            # Progress of a JSON-answered request can only travel on the standalone GET
            # stream, which may deliver it just after the result: wait a bounded time.
            with anyio.move_on_after(2.0):
                while len(seen) < 3:
                    await anyio.sleep(0.01)
            assert seen == [(1, 3, "step 1/3"), (2, 3, "step 2/3"), (3, 3, "step 3/3")]

        # Every request POST was answered with one JSON body, never SSE; the
        # notification (initialized) got 202.
        request_answers = [ct for status, ct in post_types if status == 200]
        assert request_answers, post_types
        assert all(ct.startswith("application/json") for ct in request_answers), post_types
        assert 202 in [status for status, _ in post_types], post_types

    run(body)


# -- 9. the high-level Client in auto mode ------------------------------------------------------------------


def test_high_level_client_auto_mode_falls_back_from_a_session_era_only_server(start_server):
    """Auto mode probes 2026-07-28 (server/discover); a server that serves only the session
    era (--modern off) answers -32022 naming its versions, and the client falls back at once."""
    demo_server = start_server(None, "--modern", "off")

    async def body():
        exchanges: list[tuple[str, str | None, int, Any]] = []

        async def on_response(response: httpx2.Response) -> None:
            request = response.request
            body_json = None
            if request.method == "POST" and response.status_code == 400:
                await response.aread()
                body_json = response.json()
            exchanges.append((request.method, request.headers.get("mcp-method"), response.status_code, body_json))

        started = time.monotonic()
        async with http_client(event_hooks={"response": [on_response]}) as http:
            async with Client(streamable_http_client(demo_server.url, http_client=http),
                              read_timeout_seconds=REQUEST_TIMEOUT) as client:
                assert client.protocol_version == PROTOCOL_VERSION
                result = await client.call_tool("echo", {"text": "auto mode"})
                assert text_of(result) == "auto mode"
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, f"auto-mode fallback took {elapsed:.2f} s"

        method, mcp_method, status, probe = exchanges[0]
        assert (method, mcp_method, status) == ("POST", "server/discover", 400)
        assert probe["jsonrpc"] == "2.0"
        assert probe["error"]["code"] == -32022
        assert probe["error"]["data"] == {"supported": SESSION_VERSIONS, "requested": "2026-07-28"}
        # Then the session era: initialize answered with 200.
        assert exchanges[1][0] == "POST" and exchanges[1][2] == 200

    run(body)


# -- 10. resumption ------------------------------------------------------------------------------------------


def _long_task_request(steps: int, interval_s: float) -> types.CallToolRequest:
    return types.CallToolRequest(
        params=types.CallToolRequestParams(name="long_task", arguments={"steps": steps, "interval_s": interval_s}),
    )


def test_resumption_tokens_are_stream_counter_ids(demo_server):
    async def body():
        tokens: list[str] = []
        progress: list[float] = []

        async def on_token(token: str) -> None:
            tokens.append(token)

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append(p)

        async with connect(demo_server.url) as session:
            result = await session.send_request(
                _long_task_request(4, 0.2), types.CallToolResult,
                metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                progress_callback=on_progress,
            )
            assert re.fullmatch(r"long_task finished 4 steps in \d+\.\d\d s", text_of(result))
            assert progress == [1, 2, 3, 4]

            # priming event + 4 progress notifications + the response, all on one stream,
            # with consecutive counters.
            assert len(tokens) == 6, tokens
            parsed = [TOKEN_RE.fullmatch(t) for t in tokens]
            assert all(parsed), tokens
            streams = {m.group(1) for m in parsed}
            assert len(streams) == 1, tokens
            counters = [int(m.group(2)) for m in parsed]
            assert counters == list(range(counters[0], counters[0] + 6)), tokens

            # A second call gets a new stream.
            more: list[str] = []

            async def on_more(token: str) -> None:
                more.append(token)

            await session.send_request(
                _long_task_request(1, 0.01), types.CallToolResult,
                metadata=ClientMessageMetadata(on_resumption_token_update=on_more),
            )
            assert more and all(TOKEN_RE.fullmatch(t) for t in more), more
            assert {t.split(":")[0] for t in more} != streams

    run(body)


def test_resume_in_the_same_session_replays_the_rest(demo_server):
    """After a call completes, resuming from a mid-stream token replays what came after it."""

    async def body():
        tokens: list[str] = []
        notifications: list[Any] = []

        async def on_token(token: str) -> None:
            tokens.append(token)

        async def on_message(message) -> None:
            if isinstance(message, types.ProgressNotification):
                notifications.append(message.params)

        async with connect(demo_server.url, message_handler=on_message) as session:
            first = await session.send_request(
                _long_task_request(4, 0.05), types.CallToolResult,
                metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                progress_callback=ignore_progress,
            )
            assert len(tokens) == 6, tokens
            notifications.clear()

            # tokens[2] is the event of progress 2: resume after it.
            replayed_tokens: list[str] = []

            async def on_replayed(token: str) -> None:
                replayed_tokens.append(token)

            resumed = await session.send_request(
                _long_task_request(4, 0.05), types.CallToolResult,
                metadata=ClientMessageMetadata(resumption_token=tokens[2], on_resumption_token_update=on_replayed),
            )
            assert text_of(resumed) == text_of(first)
            assert replayed_tokens == tokens[3:]
            with anyio.move_on_after(2.0):
                while len(notifications) < 2:
                    await anyio.sleep(0.01)
            assert [(n.progress, n.total, n.message) for n in notifications] == [
                (3, 4, "step 3/4"), (4, 4, "step 4/4"),
            ]

    run(body)


def test_resume_after_dropped_connection_from_a_fresh_client(demo_server):
    """Drop the POST mid-stream, then resume the same MCP session from a new transport.

    The first client opts into resumption (so the SDK sends no notifications/cancelled when
    we abandon the call) and is torn down without DELETE after the event of progress 2.
    A second transport, carrying the first one's Mcp-Session-Id, resumes with the SDK's
    ``resumption_token`` (GET + Last-Event-ID) and gets progress 3, 4 and the result.
    """

    async def body():
        session_ids: set[str] = set()

        async def on_response(response: httpx2.Response) -> None:
            if sid := response.headers.get("mcp-session-id"):
                session_ids.add(sid)

        tokens: list[str] = []
        progress_token_seen = anyio.Event()

        async def on_token(token: str) -> None:
            tokens.append(token)
            if len(tokens) == 3:  # priming, progress 1, progress 2
                progress_token_seen.set()

        started = time.monotonic()
        async with http_client(event_hooks={"response": [on_response]}) as http:
            async with streamable_http_client(demo_server.url, http_client=http, terminate_on_close=False) as (r, w):
                async with ClientSession(r, w, read_timeout_seconds=REQUEST_TIMEOUT) as session:
                    await session.initialize()
                    async with anyio.create_task_group() as tg:

                        async def call() -> None:
                            await session.send_request(
                                _long_task_request(4, 0.3), types.CallToolResult,
                                metadata=ClientMessageMetadata(on_resumption_token_update=on_token),
                                progress_callback=ignore_progress,
                            )
                            pytest.fail("the call should have been abandoned")

                        tg.start_soon(call)
                        with anyio.fail_after(10):
                            await progress_token_seen.wait()
                        tg.cancel_scope.cancel()
        assert len(session_ids) == 1, session_ids
        session_id = session_ids.pop()
        resume_from = tokens[2]
        assert TOKEN_RE.fullmatch(resume_from), tokens

        progress: list[Any] = []
        replayed: list[str] = []

        async def on_message(message) -> None:
            if isinstance(message, types.ProgressNotification):
                progress.append(message.params)

        async def on_replayed(token: str) -> None:
            replayed.append(token)

        headers = {"mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL_VERSION}
        async with http_client(headers=headers) as http:
            async with streamable_http_client(demo_server.url, http_client=http) as (r, w):
                async with ClientSession(r, w, read_timeout_seconds=REQUEST_TIMEOUT,
                                         message_handler=on_message) as session:
                    # No initialize: this transport joins the existing session.
                    result = await session.send_request(
                        _long_task_request(4, 0.3), types.CallToolResult,
                        metadata=ClientMessageMetadata(resumption_token=resume_from,
                                                       on_resumption_token_update=on_replayed),
                    )
                    assert re.fullmatch(r"long_task finished 4 steps in \d+\.\d\d s", text_of(result))
                    stream = resume_from.split(":")[0]
                    counter = int(resume_from.split(":")[1])
                    assert replayed == [f"{stream}:{counter + i}" for i in (1, 2, 3)], replayed
                    with anyio.move_on_after(2.0):
                        while len(progress) < 2:
                            await anyio.sleep(0.01)
                    assert [(p.progress, p.total, p.message) for p in progress] == [
                        (3, 4, "step 3/4"), (4, 4, "step 4/4"),
                    ]
            # The tool ran on while nobody was connected; it was not restarted.
            assert time.monotonic() - started < 4 * 0.3 + 5
            assert (await http.delete(demo_server.url)).status_code == 204

    run(body)
