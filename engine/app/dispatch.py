"""The app's method table: which code answers each client request about the app.

These are the methods every era shares (tools, resources, prompts, completion, ping);
methods that change a session (``initialize``, ``logging/setLevel``,
``resources/subscribe``) belong to the session actor, which consults its own table first.
A handler takes the request's :class:`Context` and returns the JSON-RPC ``result``, or an
awaitable of it when user code is async. Sync work (listings, pings, sync tools) therefore
answers without creating a task. Protocol errors are raised as ``ProtocolError``; a tool
that fails returns an ``isError`` result instead, as server/tools says.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import logging
import sys
from typing import Any, Awaitable, Callable

import msgspec

from ..protocol import spec
from ..protocol.jsonrpc import ProtocolError, shown
from . import content
from .context import CapabilityError, Context

log = logging.getLogger("engine")

Handler = Callable[[Context], Any]


#: Whether this runtime can run a ``thread=True`` tool. Pyodide (Cloudflare's Python
#: Workers) has no threads: there such tools are left out of ``tools/list`` and a call gets
#: an error saying why.
THREADS = sys.platform != "emscripten"


def str_param(ctx: Context, key: str) -> str:
    value = ctx.params.get(key)
    if not isinstance(value, str):
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: '{key}' must be a string")
    return value


def _args(ctx: Context, key: str) -> dict | None:
    value = ctx.params.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: '{key}' must be an object")
    return value


def _call(fn: Callable, is_async: bool, kwargs: dict, finish: Callable[[Any], Any]) -> Any:
    """Run user code; sync code finishes inline, async code returns an awaitable."""
    if is_async:
        return _finish_later(fn(**kwargs), finish)
    return finish(fn(**kwargs))


async def _finish_later(awaitable: Awaitable, finish: Callable[[Any], Any]) -> Any:
    return finish(await awaitable)


# -- utilities --------------------------------------------------------------------------------


def ping(ctx: Context) -> dict:
    return {}


# -- tools -----------------------------------------------------------------------------------


def _page(ctx: Context, kind: str) -> dict:
    """One page of a listing (server/utilities/pagination): at most ``app.page_size`` items,
    and a ``nextCursor`` when more follow. Cursors are ours and opaque: one we did not
    issue for this listing is -32602."""
    listing = ctx.app.listing(kind)
    cursor = ctx.params.get("cursor")
    size = ctx.app.page_size
    if cursor is None and (size is None or ctx.app.count(kind) <= size):
        return listing  # the common case: the cached listing, whole
    (key, items), = listing.items()
    start = 0
    if cursor is not None:
        start = _cursor_offset(cursor, kind, len(items))
    end = len(items) if size is None else start + size
    page: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        page["nextCursor"] = _make_cursor(kind, end)
    return page


def _make_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")


def _cursor_offset(cursor: Any, kind: str, total: int) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        named, _, offset = text.partition(":")
        value = int(offset)
        if named == kind and offset.isascii() and offset.isdigit() and 0 < value <= total:
            return value
    except (TypeError, ValueError, UnicodeError):
        pass
    raise ProtocolError(spec.INVALID_PARAMS, f"Invalid params: {shown(cursor, 40)} is not a cursor this "
                                             f"server gave for this list; start again without one")


def list_tools(ctx: Context) -> dict:
    return _page(ctx, "tools" if ctx.host.modern else "tools-2025")


def call_tool(ctx: Context) -> Any:
    name = str_param(ctx, "name")
    tool = ctx.app.tools.get(name)
    if tool is None:
        raise ProtocolError(spec.INVALID_PARAMS, f"Unknown tool: {shown(name)}; tools/list names the tools")
    try:
        kwargs = tool.signature.convert(_args(ctx, "arguments"))
    except (msgspec.ValidationError, TypeError) as exc:
        # server/tools: input validation errors are tool execution errors, so the
        # model can read them and correct its call.
        return content.tool_error(f"Invalid arguments for tool {name}: {exc}")
    if tool.signature.context_param:
        kwargs[tool.signature.context_param] = ctx
    if tool.is_async:
        return _run_async_tool(tool, kwargs, ctx)
    if tool.thread:
        if not THREADS:
            return content.tool_error(f"Tool {name} needs a thread, and this runtime (Pyodide) has none")
        return _run_thread_tool(tool, kwargs, ctx)
    try:
        value = tool.fn(**kwargs)
    except Exception as exc:
        return _tool_failed(name, exc, ctx)
    return content.tool_result(value, tool.structured)


async def _run_async_tool(tool: Any, kwargs: dict, ctx: Context) -> dict:
    try:
        value = await tool.fn(**kwargs)
    except Exception as exc:
        return _tool_failed(tool.name, exc, ctx)
    return content.tool_result(value, tool.structured)


async def _run_thread_tool(tool: Any, kwargs: dict, ctx: Context) -> dict:
    import anyio.to_thread  # only here: Pyodide (the Worker) has no threads to offer

    for value in kwargs.values():
        if isinstance(value, Context):
            value.loop = asyncio.get_running_loop()  # so its methods find their way back here

    try:
        value = await anyio.to_thread.run_sync(functools.partial(tool.fn, **kwargs))
    except Exception as exc:
        return _tool_failed(tool.name, exc, ctx)
    return content.tool_result(value, tool.structured)


def _tool_failed(name: str, exc: Exception, ctx: Context) -> dict:
    """A tool that raised: an ``isError`` result the model can read (server/tools). A
    ``ProtocolError`` it raises is its JSON-RPC error instead; and in the stateless era a
    missing client capability is the protocol's business (-32021)."""
    if isinstance(exc, CapabilityError):
        if ctx.host.modern:
            raise exc
    elif isinstance(exc, ProtocolError):
        raise exc  # the tool asked for a JSON-RPC error, not a result
    log.info("tool %s raised %r", name, exc)
    return content.tool_error(str(exc) or type(exc).__name__)


# -- resources ----------------------------------------------------------------------------------


def list_resources(ctx: Context) -> dict:
    return _page(ctx, "resources")


def list_templates(ctx: Context) -> dict:
    return _page(ctx, "templates")


def read_resource(ctx: Context) -> Any:
    uri = str_param(ctx, "uri")
    found = ctx.app.find_resource(uri)
    if found is None:
        raise ProtocolError(spec.RESOURCE_NOT_FOUND, f"Resource not found: {shown(uri, 200, quoted=False)}", data={"uri": uri})
    res, variables = found
    try:
        kwargs = res.signature.convert(variables)
    except msgspec.ValidationError as exc:
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid resource URI {shown(uri, 200, quoted=False)}: {exc}") from None
    if res.signature.context_param:
        kwargs[res.signature.context_param] = ctx
    return _call(res.fn, res.is_async, kwargs,
                 lambda value: {"contents": content.resource_contents(uri, value, res.mime_type)})


# -- prompts ---------------------------------------------------------------------------------------


def list_prompts(ctx: Context) -> dict:
    return _page(ctx, "prompts")


def get_prompt(ctx: Context) -> Any:
    name = str_param(ctx, "name")
    prompt = ctx.app.prompts.get(name)
    if prompt is None:
        raise ProtocolError(spec.INVALID_PARAMS, f"Unknown prompt: {shown(name)}; prompts/list names the prompts")
    try:
        kwargs = prompt.signature.convert(_args(ctx, "arguments"))
    except msgspec.ValidationError as exc:
        raise ProtocolError(spec.INVALID_PARAMS, f"Invalid arguments for prompt {name}: {exc}") from None
    if prompt.signature.context_param:
        kwargs[prompt.signature.context_param] = ctx
    description = prompt.listing["description"]

    def finish(value: Any) -> dict:
        result: dict[str, Any] = {"messages": content.prompt_messages(value)}
        if description:
            result["description"] = description
        return result

    return _call(prompt.fn, prompt.is_async, kwargs, finish)


# -- completion --------------------------------------------------------------------------------------


def complete(ctx: Context) -> Any:
    ref = _args(ctx, "ref") or {}
    argument = _args(ctx, "argument") or {}
    ref_type = ref.get("type")
    key = ref.get("name") if ref_type == "ref/prompt" else ref.get("uri")
    if ref_type not in ("ref/prompt", "ref/resource") or not isinstance(key, str):
        raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: 'ref' must be a ref/prompt with a name "
                                                     "or a ref/resource with a uri")
    completer = ctx.app.completers.get((ref_type, key))
    context_args = (_args(ctx, "context") or {}).get("arguments") or {}

    def finish(values: Any) -> dict:
        values = [str(v) for v in (values or [])]
        # completion: at most 100 values per response; say how many there were.
        return {"completion": {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}}

    if completer is None:
        return finish([])
    return _call(completer, inspect.iscoroutinefunction(completer),
                 {"argument": str(argument.get("name", "")), "value": str(argument.get("value", "")),
                  "context": context_args}, finish)


# -- skills (the Skills extension) --------------------------------------------------------------


def list_skills(ctx: Context) -> dict:
    skills = list(ctx.app.skills.values())
    size = ctx.app.page_size or len(skills) or 1
    cursor = ctx.params.get("cursor")
    start = _cursor_offset(cursor, "skills", len(skills)) if cursor is not None else 0
    page: dict[str, Any] = {"skills": [s.entry() for s in skills[start:start + size]]}
    if start + size < len(skills):
        page["nextCursor"] = _make_cursor("skills", start + size)
    return page


def _by_uri(ctx: Context, table: dict, missing: str) -> Any:
    """``table[params.uri]``, else -32602 saying ``missing`` (with the URI in ``data``)."""
    uri = str_param(ctx, "uri")
    found = table.get(uri)
    if found is None:
        raise ProtocolError(spec.INVALID_PARAMS, missing.format(shown(uri, 200, quoted=False)), data={"uri": uri})
    return found


def get_skill(ctx: Context) -> dict:
    return {"skill": _by_uri(ctx, ctx.app.skills, "No skill is served at {}").entry()}


def read_directory(ctx: Context) -> dict:
    children = _by_uri(ctx, ctx.app.folders, "{} is not a directory resource")
    if ctx.params.get("cursor") is not None:
        raise ProtocolError(spec.INVALID_PARAMS, "Invalid params: this server gives no cursor for directories")
    return {"resources": children}


METHODS: dict[str, Handler] = {
    "ping": ping,
    "tools/list": list_tools,
    "tools/call": call_tool,
    "resources/list": list_resources,
    "resources/templates/list": list_templates,
    "resources/read": read_resource,
    "prompts/list": list_prompts,
    "prompts/get": get_prompt,
    "completion/complete": complete,
    "skills/list": list_skills,
    "skills/get": get_skill,
    "resources/directory/read": read_directory,
}
