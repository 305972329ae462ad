"""The user's side: an :class:`App` collects tools, resources, prompts and completions.

An App is plain data plus decorators; it knows nothing of sessions or transports. The
runtime that serves it subscribes to its announcements (list changes, resource updates)
and carries them to the sessions that should hear them.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from ..protocol import mcp_headers
from ..protocol.tasks import EXTENSION as TASKS_EXTENSION
from . import content, schema
from .context import Context
from .dispatch import METHODS, THREADS, Handler
from .schema import Signature


SKILLS_EXTENSION = "io.modelcontextprotocol/skills"


def _doc(fn: Callable) -> str:
    return inspect.cleandoc(fn.__doc__) if fn.__doc__ else ""


class Tool:
    __slots__ = ("name", "fn", "signature", "listing", "structured", "is_async", "thread", "header_paths", "task",
                 "input_first", "rerun", "scopes")

    def __init__(self, name: str, fn: Callable, signature: Signature, listing: dict, structured: bool,
                 thread: bool = False, task: str = "forbidden", input_first: bool = False, rerun: bool = False,
                 scopes: tuple[str, ...] = ()):
        self.scopes = scopes
        self.task = task
        self.input_first = input_first
        self.rerun = rerun
        self.name = name
        self.fn = fn
        self.signature = signature
        self.listing = listing
        self.structured = structured
        self.is_async = inspect.iscoroutinefunction(fn)
        self.thread = thread
        try:  # arguments mirrored into Mcp-Param-* headers (2026-07-28)
            self.header_paths = mcp_headers.annotations(listing.get("inputSchema"))
        except ValueError as exc:
            raise TypeError(f"tool {name}: {exc}") from None


class ResourceDef:
    __slots__ = ("uri", "fn", "listing", "mime_type", "pattern", "signature", "is_async")

    def __init__(self, uri: str, fn: Callable, listing: dict, mime_type: str | None):
        self.uri = uri
        self.fn = fn
        self.listing = listing
        self.mime_type = mime_type
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = schema.signature_of(fn, f"resource_{fn.__name__}_args", Context)
        self.pattern = _template_regex(uri) if "{" in uri else None


class PromptDef:
    __slots__ = ("name", "fn", "signature", "listing", "is_async")

    def __init__(self, name: str, fn: Callable, signature: Signature, listing: dict):
        self.name = name
        self.fn = fn
        self.signature = signature
        self.listing = listing
        self.is_async = inspect.iscoroutinefunction(fn)


def _template_regex(template: str) -> re.Pattern:
    """RFC 6570 level 1 as MCP uses it: ``{var}`` matches one path segment."""
    out, pos = [], 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + r"\Z")


def _serve_file(file: Any) -> Callable:
    def read() -> Any:
        if file.text is not None:
            return content.Resource(file.uri, text=file.text, mime_type=file.mime_type)
        return content.Resource(file.uri, blob=file.data, mime_type=file.mime_type)

    read.__name__ = "skill_file"
    return read


class App:
    """An MCP server's content: ``@app.tool()``, ``@app.resource(uri)``, ``@app.prompt()``."""

    def __init__(self, name: str = "mcp-actors", version: str = "0.1.0", *,
                 title: str | None = None, instructions: str | None = None, page_size: int | None = 100,
                 cache_ttl_ms: int = 0):
        """``page_size``: items per page of ``tools/list`` and the other listings (None:
        one page, however long). ``cache_ttl_ms``: how long a 2026-07-28 client may reuse a
        listing, ``server/discover`` or a resource read (``ttlMs``); 0, the default, means
        ask again each time (right for an app whose lists change while it runs)."""
        self.name = name
        self.page_size = page_size
        self.cache_ttl_ms = cache_ttl_ms
        self.version = version
        self.title = title
        self.instructions = instructions
        self.tools: dict[str, Tool] = {}
        self.resources: dict[str, ResourceDef] = {}
        self.templates: dict[str, ResourceDef] = {}
        self.prompts: dict[str, PromptDef] = {}
        self.completers: dict[tuple[str, str], Callable] = {}
        #: Published skills (the Skills extension), by their SKILL.md URI.
        self.skills: dict[str, Any] = {}
        #: Tools that may run as tasks.
        self.task_tools: set[str] = set()
        #: Skills' folders (``resources/directory/read``): URI -> direct children.
        self.folders: dict[str, list[dict]] = {}
        self.startup: list[Callable] = []
        #: How each method is answered (``tools/call`` -> handler(ctx)): the engine's own
        #: table for an App; an SDK server's app forwards to the SDK (``engine.app.sdk``).
        self.methods: dict[str, Handler] = METHODS
        self._listeners: list[Callable[[str, dict | None, str | None], None]] = []
        self._cache: dict[str, dict] = {}

    # -- registration -----------------------------------------------------------------

    def tool(self, name: str | None = None, *, description: str | None = None, title: str | None = None,
             annotations: dict | None = None, structured: bool | None = None,
             input_schema: dict | None = None, meta: dict | None = None, thread: bool = False,
             task: str | bool = False, input_first: bool = False, rerun: bool = False,
             scopes: tuple[str, ...] | list[str] = ()) -> Callable:
        """Register a function as a tool; its type hints become the input schema.

        ``structured``: None (default) returns ``structuredContent`` when the return
        annotation is an object type (Struct, dataclass, TypedDict); True always does.
        ``input_schema`` overrides the advertised schema (validation still follows the hints).
        ``thread=True`` runs a sync function in a worker thread, for code that blocks.

        ``task``: whether calls may run as durable tasks: ``"optional"`` (or True) when the
        client takes tasks, ``"required"`` (a client that does not gets an error), False
        (``"forbidden"``, the default). ``input_first``: questions the tool asks before
        ``await ctx.run_as_task()`` are asked before the task exists (2026-07-28
        input-required round trips). ``rerun``: the tool is safe to run again from the start
        if the process died while it ran (otherwise such a task ends ``failed``).

        ``scopes``: OAuth scopes a caller's token needs for this tool, beyond the server's
        (with authorization on; a token without them gets 403 naming them, for step-up).
        """
        task_mode = {True: "optional", False: "forbidden"}.get(task, task)  # type: ignore[call-overload]
        if task_mode not in ("forbidden", "optional", "required"):
            raise TypeError(f"task={task!r}: use 'optional', 'required' or False")

        def register(fn: Callable) -> Callable:
            tool_name = name or fn.__name__
            sig = schema.signature_of(fn, f"{tool_name}_arguments", Context)
            ret = schema.return_type(fn)
            is_structured = (schema.is_object_type(ret) and not content.is_content_type(ret)
                             if structured is None else structured)
            listing: dict[str, Any] = {
                "name": tool_name,
                "description": description if description is not None else _doc(fn),
                "inputSchema": input_schema if input_schema is not None else sig.schema,
            }
            if title:
                listing["title"] = title
            if is_structured and ret is not inspect.Signature.empty:
                out = schema.object_schema(ret)
                listing["outputSchema"] = out if out.get("type") == "object" else {
                    "type": "object", "properties": {"result": out}, "required": ["result"]}
            if annotations:
                listing["annotations"] = annotations
            if meta:
                listing["_meta"] = meta
            if thread and inspect.iscoroutinefunction(fn):
                raise TypeError(f"{tool_name}: thread=True is for sync functions; async ones already yield")
            if task_mode != "forbidden" and not inspect.iscoroutinefunction(fn):
                raise TypeError(f"{tool_name}: a task tool must be async")
            self.tools[tool_name] = Tool(tool_name, fn, sig, listing, is_structured, thread, task_mode, input_first,
                                         rerun, tuple(scopes))
            if task_mode != "forbidden":
                self.task_tools.add(tool_name)
            else:
                self.task_tools.discard(tool_name)
            self._changed("tools")
            return fn

        return register

    def remove_tool(self, name: str) -> None:
        self.task_tools.discard(name)
        if self.tools.pop(name, None) is not None:
            self._changed("tools")

    def resource(self, uri: str, *, name: str | None = None, description: str | None = None,
                 mime_type: str | None = None, title: str | None = None) -> Callable:
        """Register a resource, or a template when ``uri`` has ``{var}`` parts.

        The handler returns str (text), bytes (blob), a :class:`~engine.content.Resource`
        or a list of them; a template's variables arrive as keyword arguments.
        """

        def register(fn: Callable) -> Callable:
            is_template = "{" in uri
            listing: dict[str, Any] = {
                "uriTemplate" if is_template else "uri": uri,
                "name": name or fn.__name__,
                "description": description if description is not None else _doc(fn),
            }
            if title:
                listing["title"] = title
            if mime_type:
                listing["mimeType"] = mime_type
            entry = ResourceDef(uri, fn, listing, mime_type)
            (self.templates if is_template else self.resources)[uri] = entry
            self._changed("resources")
            return fn

        return register

    def prompt(self, name: str | None = None, *, description: str | None = None,
               title: str | None = None) -> Callable:
        """Register a prompt; its (string) parameters become the prompt's arguments."""

        def register(fn: Callable) -> Callable:
            prompt_name = name or fn.__name__
            sig = schema.signature_of(fn, f"{prompt_name}_prompt_arguments", Context)
            required = set(sig.schema.get("required", ()))
            listing: dict[str, Any] = {
                "name": prompt_name,
                "description": description if description is not None else _doc(fn),
                "arguments": [
                    {"name": arg, "description": sig.descriptions.get(arg, arg), "required": arg in required}
                    for arg in sig.names
                ],
            }
            if title:
                listing["title"] = title
            self.prompts[prompt_name] = PromptDef(prompt_name, fn, sig, listing)
            self._changed("prompts")
            return fn

        return register

    def completion(self, *, prompt: str | None = None, resource: str | None = None) -> Callable:
        """Register argument completion for a prompt or a resource template.

        The handler is ``(argument: str, value: str, context: dict) -> list[str]``
        (sync or async); ``context`` holds the arguments already resolved.
        """
        if (prompt is None) == (resource is None):
            raise TypeError("completion() takes exactly one of prompt= or resource=")
        key = ("ref/prompt", prompt) if prompt is not None else ("ref/resource", resource)

        def register(fn: Callable) -> Callable:
            self.completers[key] = fn  # type: ignore[index]
            self._forget_capabilities()
            return fn

        return register

    def skill(self, directory: str, *, prefix: str = "") -> Any:
        """Publish a skill directory (the Skills extension): its ``SKILL.md`` and every file
        below it as ``skill://`` resources, its entry for ``skills/list`` and ``skills/get``,
        and its folders for ``resources/directory/read``. ``prefix`` puts path segments
        before the skill's name in its URIs. Returns the :class:`~engine.app.skills.Skill`."""
        from . import skills

        skill = skills.load(directory, prefix)
        for file in skill.files:
            meta = skill.frontmatter if file.uri == skill.uri else None
            self.resource(file.uri, name=meta["name"] if meta else file.name,
                          description=meta["description"] if meta else f"A file of the skill {skill.name}",
                          mime_type=file.mime_type)(_serve_file(file))
        self.skills[skill.uri] = skill
        for uri, children in skill.folders.items():
            self.folders[uri] = children
        self._forget_capabilities()
        return skill

    def on_startup(self, fn: Callable) -> Callable:
        """Run ``async fn(app)`` in the background while the server runs."""
        self.startup.append(fn)
        return fn

    # -- what the protocol layer asks -----------------------------------------------------

    def has_tasks(self) -> bool:
        return bool(self.task_tools)

    def capabilities(self, modern: bool = False) -> dict:
        """What ``initialize`` (session era) or ``server/discover`` (``modern``) declares
        (built once per era, until what it depends on changes: callers must not mutate it)."""
        key = "caps-modern" if modern else "caps"
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._capabilities(modern)
        return cached

    def _capabilities(self, modern: bool) -> dict:
        caps: dict[str, Any] = {
            "logging": {},
            "tools": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "prompts": {"listChanged": True},
        }
        if self.completers:
            caps["completions"] = {}
        extensions = {}
        if self.has_tasks():
            if modern:
                extensions[TASKS_EXTENSION] = {}
            else:
                caps["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        if modern and self.skills:
            extensions[SKILLS_EXTENSION] = {"directoryRead": True}
        if extensions:
            caps["extensions"] = extensions
        return caps

    def server_info(self) -> dict:
        info = {"name": self.name, "version": self.version}
        if self.title:
            info["title"] = self.title
        return info

    def listing(self, kind: str) -> dict:
        """The cached ``*/list`` result for ``tools``, ``resources``, ``templates``, ``prompts``."""
        cached = self._cache.get(kind)
        if cached is None:
            if kind == "tools":
                cached = {"tools": [t.listing for t in self.tools.values() if THREADS or not t.thread]}
            elif kind == "tools-2025":  # the session era's tools declare their task support
                cached = {"tools": [{**t.listing, "execution": {"taskSupport": t.task}} if t.task != "forbidden"
                                    else t.listing for t in self.tools.values() if THREADS or not t.thread]}
            elif kind == "resources":
                cached = {"resources": [r.listing for r in self.resources.values()]}
            elif kind == "templates":
                cached = {"resourceTemplates": [r.listing for r in self.templates.values()]}
            else:
                cached = {"prompts": [p.listing for p in self.prompts.values()]}
            self._cache[kind] = cached
        return cached

    def header_paths(self, tool: str) -> dict[str, tuple[str, ...]] | None:
        """A tool's ``x-mcp-header`` annotations (None for an unknown tool)."""
        entry = self.tools.get(tool)
        return entry.header_paths if entry is not None else None

    def count(self, kind: str) -> int:
        """How many items ``listing(kind)`` holds, without building it."""
        return len({"tools": self.tools, "tools-2025": self.tools, "resources": self.resources,
                    "templates": self.templates}.get(kind, self.prompts))

    def find_resource(self, uri: str) -> tuple[ResourceDef, dict] | None:
        exact = self.resources.get(uri)
        if exact is not None:
            return exact, {}
        for template in self.templates.values():
            m = template.pattern.match(uri)  # type: ignore[union-attr]
            if m:
                return template, m.groupdict()
        return None

    # -- announcements -----------------------------------------------------------------

    def listen(self, listener: Callable[[str, dict | None, str | None], None]) -> None:
        """Runtimes register here to hear ``(method, params, subscribed_uri)`` announcements."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify_list_changed(self, kind: str) -> None:
        """Tell clients that a list changed (``tools``, ``resources`` or ``prompts``), for lists
        that depend on more than what is registered here."""
        if kind not in ("tools", "resources", "prompts"):
            raise ValueError(f"no such list: {kind!r}")
        self._changed(kind)

    def notify_resource_updated(self, uri: str) -> None:
        """Tell every session subscribed to ``uri`` that it changed."""
        self._announce("notifications/resources/updated", {"uri": uri}, uri)

    def _changed(self, kind: str) -> None:
        for key in {"resources": ("templates", "resources"), "tools": ("tools", "tools-2025")}.get(kind, (kind,)):
            self._cache.pop(key, None)
        self._forget_capabilities()  # task tools change them
        self._announce(f"notifications/{kind}/list_changed", None, None)

    def _forget_capabilities(self) -> None:
        self._cache.pop("caps", None)
        self._cache.pop("caps-modern", None)

    def _announce(self, method: str, params: dict | None, uri: str | None) -> None:
        for listener in list(self._listeners):
            listener(method, params, uri)
