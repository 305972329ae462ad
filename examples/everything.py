"""Everything the official MCP conformance suite's server scenarios ask for.

Serve it with ``python -m engine serve examples.everything:app`` and point
``@modelcontextprotocol/conformance server --url http://127.0.0.1:PORT/mcp`` at it.
Names and texts follow shared/conformance/server-scenario-requirements-0.1.16.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

from engine import App, Audio, Context, Image, PromptMessage, ProtocolError, Resource, header
from engine.app.media import png_pixel, wav_silence

app = App("mcp-actors-everything", "0.1.0")

PNG = png_pixel()
WAV = wav_silence()


# -- tools -----------------------------------------------------------------------------


@app.tool()
def test_simple_text() -> str:
    """Returns a simple text response."""
    return "This is a simple text response for testing."


@app.tool()
def test_image_content() -> Image:
    """Returns image content (a 1x1 red PNG)."""
    return Image(PNG, "image/png")


@app.tool()
def test_audio_content() -> Audio:
    """Returns audio content (a short WAV)."""
    return Audio(WAV, "audio/wav")


@app.tool()
def test_embedded_resource() -> Resource:
    """Returns an embedded text resource."""
    return Resource("test://embedded-resource", text="This is an embedded resource content.", mime_type="text/plain")


@app.tool()
def test_multiple_content_types() -> list:
    """Returns text, image and an embedded resource together."""
    return [
        "Multiple content types test:",
        Image(PNG, "image/png"),
        Resource("test://mixed-content-resource", text='{"test":"data","value":123}', mime_type="application/json"),
    ]


@app.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages while it runs."""
    await ctx.info("Tool execution started")
    await asyncio.sleep(0.05)
    await ctx.info("Tool processing data")
    await asyncio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Tool with logging executed successfully"


@app.tool()
def test_error_handling() -> str:
    """Always fails, to test error reporting."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@app.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100."""
    for progress in (0, 50, 100):
        await ctx.progress(progress, 100)
        if progress < 100:
            await asyncio.sleep(0.05)
    return "Tool with progress executed successfully"


@app.tool()
async def test_sampling(ctx: Context, prompt: str = "Hello") -> str:
    """Asks the client's LLM to answer the prompt."""
    sampled = await ctx.sample(prompt, max_tokens=100)
    return f"LLM response: {sampled.text}"


@app.tool()
async def test_elicitation(ctx: Context, message: str = "Please provide your information") -> str:
    """Asks the user for a username and an email."""
    answer = await ctx.elicit(message, {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    })
    return f"User response: action={answer.action}, content={answer.content}"


@app.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits with a default value for every primitive type (SEP-1034)."""
    answer = await ctx.elicit("Please review and update the form fields with defaults", {
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
    return f"Elicitation completed: action={answer.action}, content={answer.content}"


@app.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits with all five enum variants (SEP-1330)."""
    answer = await ctx.elicit("Please select options from the enum fields", {
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
    return f"Elicitation completed: action={answer.action}, content={answer.content}"


@app.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE connection mid-call; the client resumes with Last-Event-ID (SEP-1699)."""
    await ctx.close_stream()
    await asyncio.sleep(0.1)
    return "Reconnection test completed successfully"


JSON_SCHEMA_2020_12 = {
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


@app.tool(description="Tool with JSON Schema 2020-12 features", input_schema=JSON_SCHEMA_2020_12)
def json_schema_2020_12_tool(name: Optional[str] = None, address: Optional[dict] = None,
                             contactMethod: Optional[str] = None, phone: Optional[str] = None,
                             email: Optional[str] = None) -> str:
    return f"Received: name={name}, address={address}, contact={contactMethod or ''}"


# -- 2026-07-28 (stateless era) -------------------------------------------------------------
# The fixtures of the conformance suite's 2026-07-28 scenarios (server-stateless and the
# input-required-result-* ones). The same code serves session-era clients: there each
# question below is a request to the client instead of an input_required round trip.

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


@app.tool()
def test_missing_capability(ctx: Context) -> str:
    """Needs the client's sampling capability (without it: -32021 naming it)."""
    ctx.require("sampling", "sample the client's LLM")
    return "The client declared sampling."


@app.tool()
async def test_streaming_elicitation(ctx: Context) -> str:
    """Asks the user a question; in 2026-07-28 as an input_required result, never a request on the stream."""
    answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
    return f"Hello, {(answer.content or {}).get('name', 'stranger')}!"


@app.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs at info and warning; only a request that names a log level gets them (2026-07-28)."""
    await ctx.info("logging tool: info")
    await ctx.warning("logging tool: warning")
    return "Logging tool finished"


@app.tool()
def test_trigger_tool_change() -> str:
    """Announces that the tool list changed (to listen streams asking for it)."""
    app.notify_list_changed("tools")
    return "Tool list change announced"


@app.tool()
def test_trigger_prompt_change() -> str:
    """Announces that the prompt list changed."""
    app.notify_list_changed("prompts")
    return "Prompt list change announced"


@app.tool()
async def test_input_required_result_elicitation(ctx: Context) -> str:
    """Asks for the user's name (input_required: user_name), then greets them."""
    answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
    if answer.action != "accept":
        return f"No name given ({answer.action})"
    return f"Hello, {(answer.content or {}).get('name', 'stranger')}!"


@app.tool()
async def test_input_required_result_sampling(ctx: Context) -> str:
    """Asks the client's LLM the capital of France."""
    sampled = await ctx.sample("What is the capital of France?", max_tokens=100, key="capital_question")
    return f"The model says: {sampled.text}"


@app.tool()
async def test_input_required_result_list_roots(ctx: Context) -> str:
    """Asks the client for its roots."""
    roots = await ctx.list_roots(key="client_roots")
    return "Roots: " + ", ".join(r.get("uri", "") for r in roots)


@app.tool()
async def test_input_required_result_request_state(ctx: Context) -> str:
    """Asks for a confirmation; the round trip carries a sealed requestState."""
    answer = await ctx.elicit("Confirm?", {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                              key="confirm")
    return f"state-ok ({answer.action})"


@app.tool()
async def test_input_required_result_multiple_inputs(ctx: Context) -> str:
    """Asks three questions at once: a name, a greeting from the LLM, the client's roots."""
    name, greeting, roots = await asyncio.gather(
        ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"),
        ctx.sample("Say hello", max_tokens=50, key="greeting"),
        ctx.list_roots(key="client_roots"))
    return f"{greeting.text} {(name.content or {}).get('name', '')}; {len(roots)} root(s)"


@app.tool()
async def test_input_required_result_multi_round(ctx: Context) -> str:
    """Asks a name, then (a second round) a colour."""
    name = await ctx.elicit("What is your name?", NAME_SCHEMA, key="step1")
    color = await ctx.elicit("What is your favourite colour?",
                             {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]},
                             key="step2")
    return f"{(name.content or {}).get('name')} likes {(color.content or {}).get('color')}"


@app.tool()
async def test_input_required_result_tampered_state(ctx: Context) -> str:
    """Asks for a confirmation; a retry whose requestState was altered is refused."""
    await ctx.elicit("Confirm?", {"type": "object", "properties": {"ok": {"type": "boolean"}}}, key="confirm")
    return "confirmed"


@app.tool()
async def test_input_required_result_capabilities(ctx: Context) -> str:
    """Asks only what the client declared it can answer (elicitation, sampling)."""
    questions = []
    if "elicitation" in ctx.client_capabilities:
        questions.append(ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"))
    if "sampling" in ctx.client_capabilities:
        questions.append(ctx.sample("Say hello", max_tokens=50, key="greeting"))
    answers = await asyncio.gather(*questions)
    return f"{len(answers)} answer(s)"


@app.tool()
def test_header_param(region: Annotated[str, header("Region")]) -> str:
    """Takes a region mirrored into the Mcp-Param-Region header (x-mcp-header)."""
    return f"Region: {region}"


# -- tasks (both wires: 2025-11-25 params.task, the 2026-07-28 tasks extension) -------------------


@app.tool()
def greet(name: str) -> str:
    """Greets someone, at once (never a task)."""
    return f"Hello, {name}!"


@app.tool(task="optional")
async def slow_compute(ctx: Context, seconds: int = 3, label: str = "") -> str:
    """Computes for a few seconds; a task when the client takes tasks."""
    for step in range(seconds * 10):
        await asyncio.sleep(0.1)
        if step % 10 == 9:
            await ctx.progress((step + 1) / 10, seconds, f"{(step + 1) // 10} of {seconds} s")
    return f'Computation "{label}" completed after {seconds} seconds. Result: 42.'


@app.tool(task="required")
async def failing_job() -> str:
    """Runs only as a task, and ends with a tool error (isError)."""
    await asyncio.sleep(1)
    raise RuntimeError("The job failed: the input was rejected")


@app.tool(task="required")
async def protocol_error_job() -> str:
    """Runs only as a task, and ends with a JSON-RPC error."""
    await asyncio.sleep(0.5)
    raise ProtocolError(-32603, "The job hit an internal error")


@app.tool(task="required")
async def confirm_delete(ctx: Context, filename: str = "important.txt") -> str:
    """Runs as a task that asks for a confirmation before it 'deletes' a file."""
    answer = await ctx.elicit(f"Delete '{filename}'?", {
        "type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}, key="confirm")
    confirmed = answer.action == "accept" and (answer.content or {}).get("confirm")
    return f"deleted '{filename}'" if confirmed else f"kept '{filename}'"


@app.tool(task="required")
async def multi_input(ctx: Context) -> str:
    """Runs as a task that asks two questions at once."""
    name, confirm = await asyncio.gather(
        ctx.elicit("Enter your name:", NAME_SCHEMA, key="name"),
        ctx.elicit("Confirm action?", {"type": "object", "properties": {"confirm": {"type": "boolean"}},
                                       "required": ["confirm"]}, key="confirm"))
    return f'name="{(name.content or {}).get("name")}" confirmed={(confirm.content or {}).get("confirm")}'


@app.tool(task="required", input_first=True)
async def test_tool_with_task(ctx: Context) -> str:
    """Asks for a name first (an input-required round trip), then greets as a task."""
    answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
    await ctx.run_as_task()
    await asyncio.sleep(0.2)
    return f"Hello, {(answer.content or {}).get('name', 'stranger')}!"


# -- resources --------------------------------------------------------------------------


@app.resource("test://static-text", name="Static Text Resource", mime_type="text/plain",
              description="A static text resource for testing")
def static_text() -> str:
    return "This is the content of the static text resource."


@app.resource("test://static-binary", name="Static Binary Resource", mime_type="image/png",
              description="A static binary resource (image) for testing")
def static_binary() -> bytes:
    return PNG


@app.resource("test://template/{id}/data", name="Template Resource", mime_type="application/json",
              description="A resource template with an id parameter")
def template_data(id: str) -> Resource:
    return Resource(f"test://template/{id}/data", mime_type="application/json",
                    text=f'{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}')


WATCHED = {"version": 0}


@app.resource("test://watched-resource", name="Watched Resource", mime_type="text/plain",
              description="A resource that changes every 3 seconds; subscribe to hear about it")
def watched() -> str:
    return f"Watched resource content, version {WATCHED['version']}"


# -- prompts ------------------------------------------------------------------------------


@app.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@app.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@app.prompt(description="A prompt that embeds a resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list:
    return [
        Resource(resourceUri, text="Embedded resource content for testing.", mime_type="text/plain"),
        "Please process the embedded resource above.",
    ]


@app.prompt(description="A prompt with image content")
def test_prompt_with_image() -> list:
    return [PromptMessage("user", Image(PNG, "image/png")), "Please analyze the image above."]


@app.prompt(description="A prompt that asks the user for context first (input_required in 2026-07-28)")
async def test_input_required_result_prompt(ctx: Context) -> str:
    answer = await ctx.elicit("What context should the prompt use?",
                              {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]},
                              key="user_context")
    return f"Use this context: {(answer.content or {}).get('context', '')}"


# -- skills (the Skills extension) -------------------------------------------------------------

app.skill(str(Path(__file__).parent / "skills" / "pdf-processing"))


# -- completions ----------------------------------------------------------------------------


@app.completion(prompt="test_prompt_with_arguments")
def complete_prompt_args(argument: str, value: str, context: dict) -> list[str]:
    options = {"arg1": ["paris", "park", "party", "test1", "test2"], "arg2": ["alpha", "beta", "gamma"]}
    return [o for o in options.get(argument, []) if o.startswith(value)] or options.get(argument, [])


@app.completion(resource="test://template/{id}/data")
def complete_template_id(argument: str, value: str, context: dict) -> list[str]:
    return [i for i in ("123", "456", "789") if i.startswith(value)]


# -- automatic behaviours (everything-server README) -------------------------------------------


@app.on_startup
async def dynamic_behaviour(app: App) -> None:
    """Add a tool, resource and prompt after 2 s; update the watched resource every 3 s."""
    await asyncio.sleep(2)

    @app.tool(description="A tool added 2 seconds after start")
    def test_dynamic_tool() -> str:
        return "This is a dynamically added tool."

    @app.resource("test://dynamic-resource", mime_type="text/plain", description="Added 2 seconds after start")
    def dynamic_resource() -> str:
        return "This is a dynamically added resource."

    @app.prompt(description="A prompt added 2 seconds after start")
    def test_dynamic_prompt() -> str:
        return "This is a dynamically added prompt."

    while True:
        await asyncio.sleep(3)
        WATCHED["version"] += 1
        app.notify_resource_updated("test://watched-resource")
