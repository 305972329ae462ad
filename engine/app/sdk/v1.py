"""mcp 1.x: a ``FastMCP`` served through the SDK's own request handlers.

Its low-level server keeps a handler per request class (``request_handlers``); each one
shapes its result (structured content, output validation, error results) the way the
SDK's own transports send it. The SDK's ``Context`` reads the request context from a
context variable (``request_ctx``), which is set around each call exactly as the SDK's
own dispatcher sets it, with a session of ours (:class:`_EngineSession`): a
``ServerSession`` without streams whose two primitives, ``send_request`` and
``send_notification``, go to the engine's :class:`~engine.app.sdk.bridge.Channel`. Every
other session method (sampling, elicitation in both modes, roots, progress, logs, list
changes) is the SDK's own code on top of those two.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mcp.types as types
import pydantic
from mcp.server.experimental.request_context import Experimental
from mcp.server.lowlevel.server import request_ctx
from mcp.server.session import ServerSession
from mcp.shared.context import RequestContext
from mcp.shared.exceptions import McpError
from msgspec import UNSET

from ...protocol import spec
from ...protocol.jsonrpc import ProtocolError
from ..context import Context
from .bridge import Channel, SdkApp, bad_params, error_of, invalid

_UNKNOWN_CLIENT = {"name": "unknown", "version": "0"}


def _dump(model: Any) -> dict:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class _EngineSession(ServerSession):
    """A ServerSession with no streams (``BaseSession.__init__`` never runs): what it sends
    goes to the engine through the request's channel."""

    def __init__(self, channel: Channel, client_params: types.InitializeRequestParams):
        self._channel = channel
        self._client_params = client_params

    async def send_request(self, request: Any, result_type: Any, request_read_timeout_seconds: Any = None,
                           metadata: Any = None, progress_callback: Any = None) -> Any:
        wire = _dump(request)
        timeout = request_read_timeout_seconds
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        try:
            raw = await self._channel.request(wire["method"], wire.get("params"), timeout)
        except Exception as exc:  # the client's error, a missing capability, a timeout
            error = error_of(exc)
            raise McpError(types.ErrorData(code=error.code, message=error.message,
                                           data=None if error.data is UNSET else error.data)) from None
        return result_type.model_validate(raw)

    async def send_notification(self, notification: Any, related_request_id: Any = None) -> None:
        wire = _dump(notification)
        self._channel.notify(wire["method"], wire.get("params"))


class FastMcpApp(SdkApp):
    """An mcp 1.x ``FastMCP``, served by the engine."""

    def __init__(self, server: Any, tasks: dict[str, str]):
        low = server._mcp_server
        options = low.create_initialization_options()
        info: dict[str, Any] = {"name": options.server_name, "version": options.server_version}
        if getattr(options, "website_url", None):
            info["websiteUrl"] = options.website_url
        if getattr(options, "icons", None):
            info["icons"] = [_dump(icon) for icon in options.icons]
        #: Request method -> the SDK's request class (its handlers are keyed by class).
        self.request_types = {cls.model_fields["method"].default: cls for cls in low.request_handlers}
        super().__init__(server, low, info, tasks)

    def sdk_methods(self) -> list[str]:
        return list(self.request_types)

    def sdk_capabilities(self) -> dict:
        from mcp.server.lowlevel.server import NotificationOptions

        return _dump(self.low.get_capabilities(NotificationOptions(), {}))

    def unbridged(self) -> list[str]:
        out = super().unbridged()
        settings = getattr(self.server, "settings", None)
        if getattr(settings, "auth", None) is not None:
            out.append("its auth settings are not applied: use the engine's --auth-* settings (docs/authorization.md)")
        own = [cls.__name__ for cls in self.low.notification_handlers
               if cls not in (types.ProgressNotification,)]
        if own:
            out.append(f"its handlers for client notifications ({', '.join(sorted(own))}) are not called")
        return out

    async def call(self, ctx: Context, method: str, params: dict) -> Any:
        cls = self.request_types.get(method)
        if cls is None:
            raise ProtocolError(spec.METHOD_NOT_FOUND, f"Method not found: {method!r}")
        try:
            request = cls.model_validate({"method": method, "params": params} if params else {"method": method})
        except pydantic.ValidationError as exc:
            raise invalid(method, exc) from None
        state = await self.lifespan.state()
        channel = Channel(self, ctx)
        client = types.InitializeRequestParams.model_validate({
            "protocolVersion": ctx.protocol_version, "capabilities": ctx.client_capabilities or {},
            "clientInfo": ctx.client_info or _UNKNOWN_CLIENT})
        session = _EngineSession(channel, client)
        request_params = getattr(request, "params", None)
        token = request_ctx.set(RequestContext(
            ctx.request_id, getattr(request_params, "meta", None), session, state,
            Experimental(task_metadata=None, _client_capabilities=client.capabilities, _session=session),
            request=None, close_sse_stream=channel.close_stream))
        try:
            result = await self.low.request_handlers[cls](request)
        except McpError as exc:
            error = exc.error
            raise ProtocolError(error.code, error.message, UNSET if error.data is None else error.data) from None
        except ValueError as exc:
            raise bad_params(method, exc) from None
        finally:
            request_ctx.reset(token)
            channel.open = False
        return _dump(result)
