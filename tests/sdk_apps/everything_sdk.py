"""The conformance suite's "everything" server, written only with the official Python SDK.

The same file runs on mcp 2.x (``MCPServer``) and mcp 1.x (``FastMCP``): their decorators
and ``Context`` agree on everything used here. The engine serves it unchanged:
``python -m engine serve tests.sdk_apps.everything_sdk:mcp``. Names and texts follow
shared/conformance/server-scenario-requirements-0.1.16.md, as examples/everything.py does
for the engine's own ``App``.
"""

from __future__ import annotations

import asyncio
import base64
from contextlib import asynccontextmanager
from typing import Any, Optional

import mcp.types as types
from pydantic import BaseModel, Field

try:  # mcp 2.x
    from mcp.server.mcpserver import Context, MCPServer as Server
    from mcp.server.mcpserver.utilities.types import Audio, Image
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP as Server
    from mcp.server.fastmcp.utilities.types import Audio, Image

# A 1x1 red PNG and a short silent WAV (the same bytes examples/everything.py sends).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
WAV = (b"RIFF" + (36 + 800).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
       + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
       + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
       + b"data" + (800).to_bytes(4, "little") + b"\x80" * 800)

#: Sessions that subscribed to the watched resource (the SDK's way: keep the session).
WATCHERS: dict[str, Any] = {}
STATE = {"version": 0, "lifespans": 0}


@asynccontextmanager
async def lifespan(server: Any):
    """Once per process: counts its runs; adds a tool after 2 s; updates the watched
    resource every 3 s and tells the sessions that subscribed."""
    STATE["lifespans"] += 1

    async def background() -> None:
        await asyncio.sleep(2)
        server.add_tool(test_dynamic_tool, name="test_dynamic_tool", description="A tool added 2 seconds after start")
        while True:
            await asyncio.sleep(3)
            STATE["version"] += 1
            for session in list(WATCHERS.values()):
                try:
                    await session.send_resource_updated("test://watched-resource")
                except Exception:
                    pass

    task = asyncio.get_running_loop().create_task(background())
    try:
        yield {"started": True, "lifespans": STATE["lifespans"]}
    finally:
        task.cancel()


mcp = Server("sdk-everything", instructions="The conformance everything server, on the official SDK.",
             lifespan=lifespan)


def test_dynamic_tool() -> str:
    return "This is a dynamically added tool."


# -- tools -------------------------------------------------------------------------------------


@mcp.tool()
def test_simple_text() -> str:
    """Returns a simple text response."""
    return "This is a simple text response for testing."


@mcp.tool()
def test_image_content() -> Image:
    """Returns image content (a 1x1 red PNG)."""
    return Image(data=PNG, format="png")


@mcp.tool()
def test_audio_content() -> types.AudioContent:
    """Returns audio content (a short WAV)."""
    return types.AudioContent(type="audio", data=base64.b64encode(WAV).decode(), mimeType="audio/wav")


@mcp.tool()
def test_embedded_resource() -> types.EmbeddedResource:
    """Returns an embedded text resource."""
    return types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
        uri="test://embedded-resource", mimeType="text/plain", text="This is an embedded resource content."))


@mcp.tool()
def test_multiple_content_types() -> list:
    """Returns text, image and an embedded resource together."""
    return [
        types.TextContent(type="text", text="Multiple content types test:"),
        types.ImageContent(type="image", data=base64.b64encode(PNG).decode(), mimeType="image/png"),
        types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri="test://mixed-content-resource", mimeType="application/json", text='{"test":"data","value":123}')),
    ]


@mcp.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages while it runs."""
    await ctx.info("Tool execution started")
    await asyncio.sleep(0.05)
    await ctx.info("Tool processing data")
    await asyncio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Tool with logging executed successfully"


@mcp.tool()
def test_error_handling() -> str:
    """Always fails, to test error reporting."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@mcp.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100."""
    for progress in (0, 50, 100):
        await ctx.report_progress(progress, 100)
        if progress < 100:
            await asyncio.sleep(0.05)
    return "Tool with progress executed successfully"


@mcp.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's LLM to answer the prompt."""
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
        max_tokens=100, related_request_id=ctx.request_id)
    content = result.content
    text = content.text if isinstance(content, types.TextContent) else str(content)
    return f"LLM response: {text}"


class UserInfo(BaseModel):
    username: str = Field(description="User's response")
    email: str = Field(description="User's email address")


@mcp.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email."""
    result = await ctx.elicit(message, schema=UserInfo)
    content = result.data.model_dump() if result.action == "accept" else None
    return f"User response: action={result.action}, content={content}"


async def _elicit_raw(ctx: Context, message: str, schema: dict) -> str:
    """Schemas beyond a flat pydantic model go through the session's own form request."""
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return f"Elicitation completed: action={result.action}, content={result.content}"


@mcp.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits with a default value for every primitive type (SEP-1034)."""
    return await _elicit_raw(ctx, "Please review and update the form fields with defaults", {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"],
                       "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": True},
        },
    })


@mcp.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits with all five enum variants (SEP-1330)."""
    return await _elicit_raw(ctx, "Please select options from the enum fields", {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Untitled single-select",
                               "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Titled single-select", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}]},
            "legacyEnum": {"type": "string", "description": "Legacy titled enum", "enum": ["opt1", "opt2", "opt3"],
                           "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Untitled multi-select",
                              "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Titled multi-select", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"}]}},
        },
    })


@mcp.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE connection mid-call; the client resumes with Last-Event-ID (SEP-1699)."""
    await ctx.close_sse_stream()
    await asyncio.sleep(0.1)
    return "Reconnection test completed successfully"


@mcp.tool(description="Tool with JSON Schema 2020-12 features")
def json_schema_2020_12_tool(name: Optional[str] = None, address: Optional[dict] = None,
                             contactMethod: Optional[str] = None, phone: Optional[str] = None,
                             email: Optional[str] = None) -> str:
    return f"Received: name={name}, address={address}, contact={contactMethod or ''}"


# The suite checks that a 2020-12 schema reaches the client untouched; the SDK derives
# schemas from signatures, so this app sets the advertised one on the SDK's own Tool.
mcp._tool_manager.get_tool("json_schema_2020_12_tool").parameters = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                          "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@mcp.tool()
async def long_task(ctx: Context, steps: int = 10, interval_s: float = 1.0) -> str:
    """Work for steps x interval_s seconds, reporting progress once per step."""
    for step in range(1, steps + 1):
        await asyncio.sleep(interval_s)
        await ctx.report_progress(step, steps, f"step {step}/{steps}")
    return f"long_task finished {steps} steps"


@mcp.tool()
async def lifespan_state(ctx: Context) -> str:
    """What the lifespan gave this request, and how many times it ran."""
    state = ctx.request_context.lifespan_context
    return f"started={state['started']} lifespans={STATE['lifespans']}"


@mcp.tool()
async def read_static(ctx: Context) -> str:
    """Reads one of this server's resources through the SDK's Context."""
    contents = list(await ctx.read_resource("test://static-text"))
    return str(contents[0].content)


@mcp.tool()
async def show_roots(ctx: Context) -> str:
    """Lists the client's roots."""
    result = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in result.roots) or "(no roots)"


@mcp.tool()
async def add_a_tool(name: str) -> str:
    """Adds a tool while the server runs (its list changes)."""
    def added() -> str:
        return f"I am {name}"

    mcp.add_tool(added, name=name, description="added at run time")
    return f"added {name}"


# -- resources ---------------------------------------------------------------------------------


@mcp.resource("test://static-text", name="Static Text Resource", mime_type="text/plain",
              description="A static text resource for testing")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", name="Static Binary Resource", mime_type="image/png",
              description="A static binary resource (image) for testing")
def static_binary() -> bytes:
    return PNG


@mcp.resource("test://template/{id}/data", name="Template Resource", mime_type="application/json",
              description="A resource template with an id parameter")
def template_data(id: str) -> str:
    return f'{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}'


@mcp.resource("test://watched-resource", name="Watched Resource", mime_type="text/plain",
              description="A resource that changes every 3 seconds; subscribe to hear about it")
def watched() -> str:
    return f"Watched resource content, version {STATE['version']}"


# -- prompts -----------------------------------------------------------------------------------


@mcp.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@mcp.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@mcp.prompt(description="A prompt that embeds a resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list:
    return [
        {"role": "user", "content": types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri=resourceUri, mimeType="text/plain", text="Embedded resource content for testing."))},
        {"role": "user", "content": types.TextContent(type="text", text="Please process the embedded resource above.")},
    ]


@mcp.prompt(description="A prompt with image content")
def test_prompt_with_image() -> list:
    return [
        {"role": "user", "content": types.ImageContent(type="image", data=base64.b64encode(PNG).decode(),
                                                       mimeType="image/png")},
        {"role": "user", "content": types.TextContent(type="text", text="Please analyze the image above.")},
    ]


# -- completions -------------------------------------------------------------------------------


@mcp.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion | None:
    if getattr(ref, "type", "") == "ref/prompt" and ref.name == "test_prompt_with_arguments":
        options = {"arg1": ["paris", "park", "party", "test1", "test2"], "arg2": ["alpha", "beta", "gamma"]}
        values = options.get(argument.name, [])
        return types.Completion(values=[o for o in values if o.startswith(argument.value)] or values)
    if getattr(ref, "type", "") == "ref/resource":
        return types.Completion(values=[i for i in ("123", "456", "789") if i.startswith(argument.value)])
    return None


# -- the low-level handlers apps register themselves: subscriptions and the log level -----------

LOW = getattr(mcp, "_lowlevel_server", None) or mcp._mcp_server
LEVELS: list[str] = []


async def _subscribe(uri: str) -> None:
    WATCHERS[uri] = LOW.request_context.session


async def _unsubscribe(uri: str) -> None:
    WATCHERS.pop(uri, None)


async def _set_level(level: str) -> None:
    LEVELS.append(level)


if hasattr(LOW, "add_request_handler"):  # mcp 2.x: handlers by method, with the request context
    async def _subscribe2(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        WATCHERS[str(params.uri)] = ctx.session
        return types.EmptyResult()

    async def _unsubscribe2(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        WATCHERS.pop(str(params.uri), None)
        return types.EmptyResult()

    async def _set_level2(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        LEVELS.append(params.level)
        return types.EmptyResult()

    LOW.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe2)
    LOW.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe2)
    LOW.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level2)
else:  # mcp 1.x: the decorators of the low-level server
    LOW.subscribe_resource()(_subscribe)
    LOW.unsubscribe_resource()(_unsubscribe)
    LOW.set_logging_level()(_set_level)


@mcp.tool()
def log_levels() -> str:
    """The levels the app's own logging/setLevel handler saw."""
    return ",".join(LEVELS) or "(none)"
