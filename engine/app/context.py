"""The per-request context a handler receives by annotating a parameter ``Context``.

It is the handler's window onto whatever runs it: progress and log notifications related
to the request, requests to the client (sampling, elicitation, roots), the ids, and
cancellation. A Context never knows what runs it: it talks to a :class:`HandlerHost`, a
small port that the session actor implements today (and a stateless request or a task
actor in the other eras). So a Context can exist without a session, and this module
imports nothing from the actors.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Protocol, TypeVar

import msgspec

from ..protocol import jsonrpc, spec
from ..protocol.auth import Principal
from ..protocol.jsonrpc import ProtocolError, RequestId
from .schema import object_schema


class HandlerHost(Protocol):
    """What a :class:`Context` needs from whatever runs its handler.

    ``stream`` is the host's own handle for where the request's messages go; a Context
    only passes it back. Everything the host sends is its business: the session actor
    logs it for resumption before any connection sees it.
    """

    #: The :class:`~engine.app.application.App` being served.
    app: Any
    #: True in the stateless era (2026-07-28), where what the client lacks is a protocol
    #: error (-32021) and there is no session.
    modern: bool

    @property
    def session_id(self) -> str | None: ...

    @property
    def protocol_version(self) -> str: ...

    @property
    def client_info(self) -> dict: ...

    @property
    def client_capabilities(self) -> dict: ...

    def logs(self, level: str) -> bool:
        """Whether a log message at ``level`` passes the client's chosen level."""
        ...

    def emit(self, stream: Any, payload: bytes) -> None:
        """Send a message related to the request (a notification) on its stream."""
        ...

    def progress(self, stream: Any, params: dict) -> None:
        """Report progress (``notifications/progress`` params, token included)."""
        ...

    async def request_client(self, stream: Any, method: str, params: dict | None, timeout: float,
                             key: str | None = None) -> Any:
        """Ask the client something and await its result (or a :class:`ClientError`).
        ``key`` names the question where the answer comes back by name (2026-07-28's
        input-required results); a session asks with a JSON-RPC request instead."""
        ...

    def close_stream(self, stream: Any) -> None:
        """Close the request's connection now, leaving the client to resume it."""
        ...

    def start_task(self) -> None:
        """``ctx.run_as_task()``: where a tool's synchronous part ends and its task begins
        (a no-op where no task is to start)."""
        ...


F = TypeVar("F", bound=Callable[..., Any])


def _on_host_loop(method: F) -> F:
    """Run a Context method on the event loop its host lives on. A ``thread=True`` tool that
    awaits it in a loop of its own (``asyncio.run(ctx.info(...))``) would otherwise touch
    the host (and its store) from another thread."""

    @functools.wraps(method)
    async def hop(self: "Context", *args: Any, **kwargs: Any) -> Any:
        if self.loop is None or asyncio.get_running_loop() is self.loop:
            return await method(self, *args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), self.loop)
        return await asyncio.wrap_future(future)

    return hop  # type: ignore[return-value]


class ClientError(Exception):
    """The client answered a server-to-client request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class CapabilityError(ProtocolError):
    """The client did not declare the capability a request to it needs.

    ``capabilities`` names what was missing, as client capabilities (``{"sampling": {}}``):
    2026-07-28 answers -32021 with it as ``data.requiredCapabilities``."""

    def __init__(self, code: int, message: str, capabilities: dict | None = None):
        super().__init__(code, message)
        self.capabilities = capabilities or {}


class Sampled(msgspec.Struct, rename="camel", kw_only=True):
    role: str = "assistant"
    content: Any = None
    model: str = ""
    stop_reason: str | None = None

    @property
    def text(self) -> str:
        blocks = self.content if isinstance(self.content, list) else [self.content]
        return "".join(b.get("text", "") for b in blocks if isinstance(b, dict))


class Elicited(msgspec.Struct, kw_only=True):
    action: str
    content: dict | None = None


class Context:
    """Handed to a handler whose parameter is annotated ``Context``."""

    __slots__ = ("host", "request_id", "params", "stream", "progress_token", "cancelled", "loop", "principal")

    def __init__(self, host: HandlerHost, request_id: RequestId, params: dict, stream: Any,
                 principal: Principal | None = None):
        self.host = host
        #: Who sent the request (the access token's issuer, subject, scopes and claims), when
        #: the server checks tokens; None when it does not.
        self.principal = principal
        #: The host's loop, set when the handler leaves it (a ``thread=True`` tool).
        self.loop: asyncio.AbstractEventLoop | None = None
        self.request_id = request_id
        self.params = params
        self.stream = stream
        meta = params.get("_meta")
        self.progress_token = meta.get("progressToken") if isinstance(meta, dict) else None
        self.cancelled = False

    # -- identity ---------------------------------------------------------------------

    @property
    def app(self) -> Any:
        return self.host.app

    @property
    def session_id(self) -> str | None:
        """The session's id; None where there is no session (the stateless era)."""
        return self.host.session_id

    @property
    def protocol_version(self) -> str:
        return self.host.protocol_version

    @property
    def client_info(self) -> dict:
        return self.host.client_info

    @property
    def client_capabilities(self) -> dict:
        return self.host.client_capabilities

    # -- notifications ------------------------------------------------------------------

    @_on_host_loop
    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress, if the client asked for it with ``_meta.progressToken``."""
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        self.host.progress(self.stream, params)

    @_on_host_loop
    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """Send a log message, unless the client's ``logging/setLevel`` filters it out."""
        if level not in spec.LOG_SEVERITY:
            raise ValueError(f"unknown log level {level!r}")
        if not self.host.logs(level):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        self.host.emit(self.stream, jsonrpc.notification(spec.LOG_MESSAGE, params))

    async def debug(self, data: Any, logger: str | None = None) -> None:
        await self.log("debug", data, logger)

    async def info(self, data: Any, logger: str | None = None) -> None:
        await self.log("info", data, logger)

    async def warning(self, data: Any, logger: str | None = None) -> None:
        await self.log("warning", data, logger)

    async def error(self, data: Any, logger: str | None = None) -> None:
        await self.log("error", data, logger)

    @_on_host_loop
    async def close_stream(self) -> None:
        """Close this request's SSE connection now; the client reconnects and resumes.

        Only for clients at 2025-11-25 or later (they were primed with an event id and a
        ``retry`` delay); for older clients this does nothing.
        """
        self.host.close_stream(self.stream)

    # -- requests to the client ---------------------------------------------------------

    def require(self, capability: str, what: str = "do this") -> None:
        """Refuse unless the client declared ``capability`` (CapabilityError: in the stateless
        era a -32021 error naming it; in a session a tool error the model can read)."""
        self._require(capability, what)

    def _require(self, capability: str, what: str) -> None:
        if capability not in self.host.client_capabilities:
            raise CapabilityError(
                spec.INVALID_REQUEST,
                f"The client did not declare the '{capability}' capability, so the server cannot {what}",
                {capability: {}},
            )

    @_on_host_loop
    async def request(self, method: str, params: dict | None = None, timeout: float = 300.0,
                      key: str | None = None) -> Any:
        """Ask the client (``method`` with ``params``) and await its result.

        In a session this is a request on this request's stream; in the stateless era it
        becomes an ``input_required`` result and the handler runs again once the client
        answers (``key`` names the question there; by default the questions are numbered
        in the order they are asked, so a handler should ask them in the same order each
        time it runs, and do nothing before them that must not happen twice)."""
        return await self.host.request_client(self.stream, method, params, timeout, key)

    async def sample(self, messages: str | list, *, max_tokens: int = 1000, system_prompt: str | None = None,
                     temperature: float | None = None, stop_sequences: list[str] | None = None,
                     model_preferences: dict | None = None, include_context: str | None = None,
                     timeout: float = 300.0, key: str | None = None) -> Sampled:
        """Ask the client's LLM (``sampling/createMessage``); a str is one user text message."""
        self._require("sampling", "request LLM sampling")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
        params: dict[str, Any] = {"messages": messages, "maxTokens": max_tokens}
        for name, value in (("systemPrompt", system_prompt), ("temperature", temperature),
                            ("stopSequences", stop_sequences), ("modelPreferences", model_preferences),
                            ("includeContext", include_context)):
            if value is not None:
                params[name] = value
        result = await self.request("sampling/createMessage", params, timeout, key)
        return msgspec.convert(result, Sampled)

    def _require_elicitation(self, mode: str) -> None:
        """client/elicitation: ``{}`` declares form mode alone (as before modes existed);
        otherwise each mode the client supports is named."""
        self._require("elicitation", "ask the user for input")
        declared = self.client_capabilities.get("elicitation")
        modes = set(declared) & {"form", "url"} if isinstance(declared, dict) else set()
        if mode not in (modes or {"form"}):
            raise CapabilityError(
                spec.INVALID_REQUEST,
                f"The client did not declare {mode}-mode elicitation (it supports: {', '.join(sorted(modes))})",
                {"elicitation": {mode: {}}},
            )

    async def elicit(self, message: str, schema: Any, timeout: float = 300.0, *, key: str | None = None) -> Elicited:
        """Ask the user for input (``elicitation/create``, form mode); ``schema`` is a dict or
        a Struct type."""
        self._require_elicitation("form")
        if not isinstance(schema, dict):
            schema = object_schema(schema)
        result = await self.request("elicitation/create", {"message": message, "requestedSchema": schema}, timeout,
                                    key)
        return msgspec.convert(result, Elicited)

    async def elicit_url(self, message: str, url: str, elicitation_id: str, timeout: float = 300.0, *,
                         key: str | None = None) -> Elicited:
        """Send the user to ``url`` (``elicitation/create``, url mode: a page of yours that
        collects what must not pass through the client, such as a credential). 2026-07-28
        has no ``elicitationId``; it is sent to session-era clients only."""
        self._require_elicitation("url")
        params = {"mode": "url", "message": message, "url": url}
        if self.session_id is not None:
            params["elicitationId"] = elicitation_id
        result = await self.request("elicitation/create", params, timeout, key)
        return msgspec.convert(result, Elicited)

    async def list_roots(self, timeout: float = 60.0, *, key: str | None = None) -> list[dict]:
        self._require("roots", "list its roots")
        result = await self.request("roots/list", None, timeout, key)
        roots = result.get("roots") if isinstance(result, dict) else None
        return roots if isinstance(roots, list) else []

    # -- tasks ---------------------------------------------------------------------------

    async def run_as_task(self) -> None:
        """From here on, run as a task if the client takes tasks (for a tool declared
        ``@app.tool(task=..., input_first=True)``: what it asks before this line is asked
        synchronously, 2026-07-28's input-required round trips; the task starts here, with
        those answers). Elsewhere, and inside a task, it does nothing."""
        self.host.start_task()

    @property
    def task_id(self) -> str | None:
        """The task this handler runs as, if it does."""
        return getattr(self.host, "task_id", None)

    # -- cancellation -------------------------------------------------------------------

    @property
    def is_cancelled(self) -> bool:
        """True once the client sent ``notifications/cancelled`` for this request."""
        return self.cancelled

    async def sleep(self, seconds: float) -> None:
        """Sleep; a cancellation from the client interrupts it (the handler is cancelled)."""
        await asyncio.sleep(seconds)

