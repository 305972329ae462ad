"""The per-request context a handler receives by annotating a parameter ``Context``.

It is the handler's window onto its session: progress and log notifications related to
the request, requests to the client (sampling, elicitation, roots), the ids, and
cancellation. Everything it sends goes through the actor, so it lands on the request's
own stream, is logged for resumption and survives a dropped connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from . import jsonrpc, protocol
from .jsonrpc import ProtocolError, RequestId

if TYPE_CHECKING:  # pragma: no cover
    from .actor import SessionActor
    from .eventlog import Stream


class ClientError(Exception):
    """The client answered a server-to-client request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class CapabilityError(ProtocolError):
    """The client did not declare the capability a request to it needs."""


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

    __slots__ = ("actor", "request_id", "params", "stream", "progress_token", "cancelled")

    def __init__(self, actor: "SessionActor", request_id: RequestId, params: dict, stream: "Stream"):
        self.actor = actor
        self.request_id = request_id
        self.params = params
        self.stream = stream
        meta = params.get("_meta")
        self.progress_token = meta.get("progressToken") if isinstance(meta, dict) else None
        self.cancelled = False

    # -- identity ---------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.actor.session.id

    @property
    def protocol_version(self) -> str:
        return self.actor.session.state.version

    @property
    def client_info(self) -> dict:
        return self.actor.session.state.client_info

    @property
    def client_capabilities(self) -> dict:
        return self.actor.session.state.client_capabilities

    # -- notifications ------------------------------------------------------------------

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress, if the client asked for it with ``_meta.progressToken``."""
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        self.actor.emit(self.stream, jsonrpc.notification(protocol.PROGRESS, params))

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """Send a log message, unless the client's ``logging/setLevel`` filters it out."""
        if level not in protocol.LOG_SEVERITY:
            raise ValueError(f"unknown log level {level!r}")
        if not self.actor.session.logs(level):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        self.actor.emit(self.stream, jsonrpc.notification(protocol.LOG_MESSAGE, params))

    async def debug(self, data: Any, logger: str | None = None) -> None:
        await self.log("debug", data, logger)

    async def info(self, data: Any, logger: str | None = None) -> None:
        await self.log("info", data, logger)

    async def warning(self, data: Any, logger: str | None = None) -> None:
        await self.log("warning", data, logger)

    async def error(self, data: Any, logger: str | None = None) -> None:
        await self.log("error", data, logger)

    async def close_stream(self) -> None:
        """Close this request's SSE connection now; the client reconnects and resumes.

        Only for clients at 2025-11-25 or later (they were primed with an event id and a
        ``retry`` delay); for older clients this does nothing.
        """
        self.actor.close_connection(self.stream)

    # -- requests to the client ---------------------------------------------------------

    def _require(self, capability: str, what: str) -> None:
        if not self.actor.session.client_supports(capability):
            raise CapabilityError(
                protocol.INVALID_REQUEST,
                f"The client did not declare the '{capability}' capability, so the server cannot {what}",
            )

    async def request(self, method: str, params: dict | None = None, timeout: float = 300.0) -> Any:
        """Send a request to the client on this request's stream and await its result."""
        return await self.actor.request_client(self.stream, method, params, timeout)

    async def sample(self, messages: str | list, *, max_tokens: int = 1000, system_prompt: str | None = None,
                     temperature: float | None = None, stop_sequences: list[str] | None = None,
                     model_preferences: dict | None = None, include_context: str | None = None,
                     timeout: float = 300.0) -> Sampled:
        """Ask the client's LLM (``sampling/createMessage``); a str is one user text message."""
        self._require("sampling", "request LLM sampling")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
        params: dict[str, Any] = {"messages": messages, "maxTokens": max_tokens}
        for key, value in (("systemPrompt", system_prompt), ("temperature", temperature),
                           ("stopSequences", stop_sequences), ("modelPreferences", model_preferences),
                           ("includeContext", include_context)):
            if value is not None:
                params[key] = value
        result = await self.request("sampling/createMessage", params, timeout)
        return msgspec.convert(result, Sampled)

    async def elicit(self, message: str, schema: Any, timeout: float = 300.0) -> Elicited:
        """Ask the user for input (``elicitation/create``); ``schema`` is a dict or a Struct type."""
        self._require("elicitation", "ask the user for input")
        if not isinstance(schema, dict):
            from .schema import object_schema

            schema = object_schema(schema)
        result = await self.request("elicitation/create", {"message": message, "requestedSchema": schema}, timeout)
        return msgspec.convert(result, Elicited)

    async def list_roots(self, timeout: float = 60.0) -> list[dict]:
        self._require("roots", "list its roots")
        result = await self.request("roots/list", None, timeout)
        roots = result.get("roots") if isinstance(result, dict) else None
        return roots if isinstance(roots, list) else []

    # -- cancellation -------------------------------------------------------------------

    @property
    def is_cancelled(self) -> bool:
        """True once the client sent ``notifications/cancelled`` for this request."""
        return self.cancelled

    async def sleep(self, seconds: float) -> None:
        """Sleep; a cancellation from the client interrupts it (the handler is cancelled)."""
        await asyncio.sleep(seconds)

