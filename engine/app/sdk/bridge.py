"""What every SDK app shares, whichever SDK version drives it.

:class:`SdkApp` is an :class:`~engine.App` whose method table forwards to the SDK (the
subclass for each SDK version says how). Around the SDK it adds what the engine owns:

- **listings**: the SDK's own ``*/list`` results, cached per kind until something changes.
  The SDK's managers notice nothing at run time, so their mutators are wrapped
  (:meth:`SdkApp._watch`): a tool, resource or prompt added or removed while serving
  clears the cache and sends ``list_changed``;
- **the lifespan**: the SDK server's lifespan runs once per process (:class:`Lifespan`),
  started with the server (or by the first request where nothing starts it);
- **the channel** (:class:`Channel`): where the SDK's outgoing messages go. Requests
  (sampling, elicitation, roots) and request-scoped notifications go to the engine Context
  of the request being served; list changes and resource updates the SDK sends to "its
  session" become the engine's announcements (every session hears a list change, each
  subscribed session a resource update);
- **errors**: the SDK's protocol errors keep their code and message; bad params are
  -32602; a failure inside the SDK is -32603, logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from ...protocol import jsonrpc, spec
from ...protocol.jsonrpc import ProtocolError
from ..application import App
from ..context import CapabilityError, Context
from ..dispatch import METHODS

log = logging.getLogger("engine")

#: Methods the engine answers itself, whatever the SDK has for them.
ENGINE_METHODS = frozenset({spec.INITIALIZE, "ping", spec.DISCOVER, "subscriptions/listen"})
#: The SDK's listings the engine caches, by method: the App cache key of each.
LISTINGS = {"tools/list": "tools", "resources/list": "resources", "resources/templates/list": "templates",
            "prompts/list": "prompts"}
#: The managers an SDK server keeps its content in, the mutators to watch, the list they change.
MANAGERS = (("_tool_manager", ("add_tool", "remove_tool"), "tools"),
            ("_resource_manager", ("add_resource", "add_template", "remove_resource", "remove_template"),
             "resources"),
            ("_prompt_manager", ("add_prompt", "remove_prompt"), "prompts"))
#: Where the SDK answers a bad argument with a ValueError (a missing prompt argument, an
#: unknown resource): the spec's code for it is -32602, not the SDK's 0 or -32603.
VALUE_ERROR_IS_BAD_PARAMS = frozenset({"prompts/get", "resources/read", "completion/complete"})
#: What a request to the client needs the client to have declared (2026-07-28 checks it).
NEEDS = {"sampling/createMessage": "sampling", "roots/list": "roots", "elicitation/create": "elicitation"}


class TaskTool:
    """A tool of an SDK app that may run as a task (``from_sdk(tasks=...)``): what the
    engine's task rules read of a tool."""

    __slots__ = ("name", "task", "rerun", "input_first", "header_paths")

    def __init__(self, name: str, task: str):
        if task not in ("optional", "required"):
            raise ValueError(f"tasks[{name!r}] must be 'optional' or 'required', not {task!r}")
        self.name = name
        self.task = task
        self.rerun = False
        self.input_first = False
        self.header_paths: dict = {}


class Lifespan:
    """The SDK server's lifespan, entered once and held by one task (anyio scopes must be
    left by the task that entered them); requests wait until it has started."""

    def __init__(self, enter: Callable[[], Any]):
        self.enter = enter
        self.ready: asyncio.Future | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.ready is None:
            loop = asyncio.get_running_loop()
            self.ready = loop.create_future()
            self.task = loop.create_task(self._hold())

    async def _hold(self) -> None:
        ready = self.ready
        try:
            async with self.enter() as state:
                ready.set_result(state)  # type: ignore[union-attr]
                await asyncio.Event().wait()  # until the server stops (this task is cancelled)
        except BaseException as exc:
            if not ready.done():  # type: ignore[union-attr]
                log.error("the SDK server's lifespan failed to start: %r", exc)
                ready.set_exception(ProtocolError(spec.INTERNAL_ERROR, "The server's lifespan failed to start"))  # type: ignore[union-attr]
            raise

    async def hold(self, app: Any) -> None:
        """The startup hook: start it with the server, end it when the server stops."""
        self.start()
        await self.task  # type: ignore[misc]

    async def state(self) -> Any:
        self.start()
        return await asyncio.shield(self.ready)  # type: ignore[arg-type]


class Channel:
    """Where one request's outgoing SDK messages go (see the module doc)."""

    __slots__ = ("app", "ctx", "open")

    def __init__(self, app: "SdkApp", ctx: Context):
        self.app = app
        self.ctx = ctx
        self.open = True

    async def request(self, method: str, params: dict | None, timeout: float | None) -> Any:
        """A request to the client; its result, or the client's error as ProtocolError."""
        if not self.open:
            raise ProtocolError(spec.INTERNAL_ERROR, f"Cannot send {method}: the request it belonged to is over")
        ctx = self.ctx
        needed = NEEDS.get(method)
        if needed and ctx.host.modern:  # 2026-07-28: a missing capability is the server's error to name
            ctx.require(needed, f"send {method}")
        return await ctx.request(method, params, timeout or 300.0)

    def notify(self, method: str, params: dict | None) -> None:
        ctx = self.ctx
        if method.endswith("/list_changed"):
            kind = method.split("/")[1]
            if kind in ("tools", "resources", "prompts"):
                self.app._changed(kind)
            return
        if method == spec.RESOURCE_UPDATED:
            self.app.notify_resource_updated(str((params or {}).get("uri", "")))
            return
        if not self.open:
            return  # nothing to relate it to any more
        if method == spec.PROGRESS:
            ctx.host.progress(ctx.stream, dict(params or {}))
            return
        if method == spec.LOG_MESSAGE and not ctx.host.logs(str((params or {}).get("level", "info"))):
            return  # the SDK sends every log at handshake versions: the client's level filters
        ctx.host.emit(ctx.stream, jsonrpc.notification(method, params))

    async def close_stream(self) -> None:
        if self.open:
            await self.ctx.close_stream()


def bad_params(method: str, exc: ValueError) -> ValueError | ProtocolError:
    """A ValueError out of the SDK: -32602 where it means a bad argument, else as it is."""
    if method in VALUE_ERROR_IS_BAD_PARAMS:
        return ProtocolError(spec.INVALID_PARAMS, str(exc))
    return exc


def invalid(method: str, exc: Exception) -> ProtocolError:
    """The SDK's param validation failed (a pydantic ValidationError): -32602, saying where."""
    errors = exc.errors() if hasattr(exc, "errors") else []  # type: ignore[attr-defined]
    if not errors:
        return ProtocolError(spec.INVALID_PARAMS, f"Invalid params for {method}: {exc}")
    where = ".".join(str(part) for part in errors[0].get("loc", ())) or "params"
    return ProtocolError(spec.INVALID_PARAMS, f"Invalid params for {method}: {where}: {errors[0].get('msg', 'invalid')}")


def error_of(exc: BaseException) -> ProtocolError:
    """A client's or the engine's error as the (code, message, data) the SDK will carry."""
    if isinstance(exc, CapabilityError):
        return ProtocolError(spec.MISSING_CLIENT_CAPABILITY, exc.message,
                             {"requiredCapabilities": exc.capabilities})
    if isinstance(exc, ProtocolError):
        return exc
    code = getattr(exc, "code", spec.INTERNAL_ERROR)
    return ProtocolError(code if isinstance(code, int) else spec.INTERNAL_ERROR, str(getattr(exc, "message", exc)),
                         getattr(exc, "data", None))


class SdkApp(App):
    """An SDK server, served by the engine (the subclass drives its SDK version)."""

    def __init__(self, server: Any, low: Any, info: dict, tasks: dict[str, str]):
        super().__init__(info.get("name", "mcp-server"), info.get("version", "0"), title=info.get("title"),
                         instructions=getattr(low, "instructions", None), page_size=None)
        self.server = server
        self.low = low
        self.info = info
        self.lifespan = Lifespan(lambda: low.lifespan(low))
        self.startup.append(self.lifespan.hold)
        self.methods = {"ping": METHODS["ping"], **{method: self._forwarder(method) for method in self.sdk_methods()
                                                     if method not in ENGINE_METHODS}}
        known = self.sdk_tool_names()
        for name, mode in tasks.items():
            if name not in known:
                raise ValueError(f"tasks names {name!r}, which is no tool of this server")
            self.tools[name] = TaskTool(name, mode)  # type: ignore[assignment]
            self.task_tools.add(name)
        self._watch()
        for what in self.unbridged():
            log.warning("SDK server %r: %s", self.name, what)

    # -- what a subclass says about its SDK ---------------------------------------------

    def sdk_methods(self) -> list[str]:
        """Every request method the SDK server has a handler for."""
        raise NotImplementedError

    def sdk_tool_names(self) -> set[str]:
        return {tool.name for tool in self.server._tool_manager.list_tools()}

    def sdk_capabilities(self) -> dict:
        raise NotImplementedError

    def unbridged(self) -> list[str]:
        """What the engine does not serve of this server, each said once at start."""
        out = []
        routes = getattr(self.server, "_custom_starlette_routes", None)
        if routes:
            paths = ", ".join(sorted({getattr(r, "path", "?") for r in routes}))
            out.append(f"its custom HTTP routes ({paths}) are not served by the engine")
        if getattr(self.server, "_token_verifier", None) or getattr(self.server, "_auth_server_provider", None):
            out.append("its auth settings (token verifier, auth server provider) are not applied: "
                       "use the engine's --auth-* settings (docs/authorization.md)")
        return out

    async def call(self, ctx: Context, method: str, params: dict) -> Any:
        """Run one request through the SDK; its wire result, or ProtocolError."""
        raise NotImplementedError

    # -- the engine's side ----------------------------------------------------------------

    def _forwarder(self, method: str) -> Callable[[Context], Any]:
        key = LISTINGS.get(method)

        async def forward(ctx: Context) -> Any:
            params = ctx.params
            if ctx.host.modern and ("requestState" in params or "inputResponses" in params):
                # the engine's input-required round trip, not the SDK's: it must not see them
                params = {k: v for k, v in params.items() if k not in ("requestState", "inputResponses")}
            if key is None or params.get("cursor") is not None:
                return await self.call(ctx, method, params)
            cache_key = "tools-2025" if key == "tools" and self.task_tools and not ctx.host.modern else key
            cached = self._cache.get(cache_key)
            if cached is None:
                cached = await self.call(ctx, method, {k: v for k, v in params.items() if k != "_meta"})
                if cache_key == "tools-2025":  # the session era's tools declare their task support
                    cached = {**cached, "tools": [{**t, "execution": {"taskSupport": self.tools[t["name"]].task}}
                                                  if t.get("name") in self.task_tools else t
                                                  for t in cached.get("tools", [])]}
                self._cache[cache_key] = cached
            return dict(cached)

        forward.__name__ = f"sdk:{method}"
        return forward

    def _capabilities(self, modern: bool) -> dict:
        caps = super()._capabilities(modern)
        if "completions" in self.sdk_capabilities():
            caps["completions"] = {}
        return caps

    def server_info(self) -> dict:
        return self.info

    def header_paths(self, tool: str) -> dict | None:
        return None  # the SDK declares no x-mcp-header arguments

    def _watch(self) -> None:
        """Wrap the SDK managers' mutators so that a change at run time is announced."""
        for attr, names, kind in MANAGERS:
            manager = getattr(self.server, attr, None)
            for name in names:
                original = getattr(manager, name, None)
                if original is None:
                    continue

                def wrapper(*args: Any, _original: Callable = original, _kind: str = kind, **kwargs: Any) -> Any:
                    result = _original(*args, **kwargs)
                    self._changed(_kind)
                    return result

                setattr(manager, name, wrapper)
