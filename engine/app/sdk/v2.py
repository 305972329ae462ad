"""mcp 2.x: an ``MCPServer`` served through the SDK's own ``ServerRunner``.

``ServerRunner.on_request(dctx, method, params)`` is the SDK's whole request path (its
middleware, param validation for the protocol version, the handler, the per-version
result sieve) and returns the wire ``result``. What it needs from a transport is two small
channels, supplied here: a ``DispatchContext`` (this request's stream: :class:`_Dispatch`)
and an ``Outbound`` (the session's own: :class:`_Outbound`), both onto the engine's
:class:`~engine.app.sdk.bridge.Channel`. The SDK then builds its own session, request
context and ``Context``, so ``ctx.report_progress``, logging, sampling, elicitation (form
and URL), roots, ``ctx.read_resource``, the request id and meta all work unmodified.

The SDK is told the session's negotiated version; a 2026-07-28 request is run as
2025-11-25, because the engine, not the SDK, speaks that era to the client (its
input-required round trips, ``requestState``, ``resultType``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pydantic
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import InitializeRequestParams
from msgspec import UNSET

from ...protocol.jsonrpc import ProtocolError
from ..context import Context
from ..dispatch import THREADS
from .bridge import Channel, SdkApp, bad_params, error_of, invalid

#: The protocol version the SDK is told for a request of the stateless era.
SDK_MODERN_STAND_IN = "2025-11-25"
_TRANSPORT = TransportContext(kind="mcp-actors", can_send_request=True)
_UNKNOWN_CLIENT = {"name": "unknown", "version": "0"}


def _sdk_error(exc: BaseException) -> MCPError:
    error = error_of(exc)
    return MCPError(error.code, error.message, None if error.data is UNSET else error.data)


class _Outbound:
    """The SDK's connection-scoped channel (what it sends "to the session")."""

    __slots__ = ("channel",)

    def __init__(self, channel: Channel):
        self.channel = channel

    async def send_raw_request(self, method: str, params: Any, opts: Any = None) -> dict:
        try:
            return await self.channel.request(method, dict(params) if params is not None else None,
                                              (opts or {}).get("timeout"))
        except MCPError:
            raise
        except Exception as exc:  # the client's error, a missing capability, a timeout
            raise _sdk_error(exc) from None

    async def notify(self, method: str, params: Any, opts: Any = None) -> None:
        self.channel.notify(method, dict(params) if params is not None else None)


class _Dispatch(_Outbound):
    """The SDK's request-scoped channel: the same engine Context, plus what only a request has."""

    __slots__ = ("request_id", "cancel_requested", "message_metadata")

    transport = _TRANSPORT
    can_send_request = True

    def __init__(self, channel: Channel, request_id: Any):
        super().__init__(channel)
        self.request_id = request_id
        # The engine cancels a cancelled request's task itself; the SDK's event stays unset.
        self.cancel_requested = anyio.Event()
        self.message_metadata = ServerMessageMetadata(close_sse_stream=channel.close_stream)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        await self.channel.ctx.progress(progress, total, message)


def _run_sync_inline() -> None:
    """Where there are no threads (Pyodide), run what the SDK sends to a worker thread (its
    sync tools, resources and prompts) inline instead: it calls anyio.to_thread.run_sync
    through the module attribute, so replacing that is enough."""
    import anyio.lowlevel
    import anyio.to_thread

    async def run_sync(func: Any, *args: Any, abandon_on_cancel: bool = False, cancellable: Any = None,
                       limiter: Any = None) -> Any:
        await anyio.lowlevel.checkpoint()
        return func(*args)

    anyio.to_thread.run_sync = run_sync


class McpServerApp(SdkApp):
    """An mcp 2.x ``MCPServer``, served by the engine."""

    def __init__(self, server: Any, tasks: dict[str, str]):
        if not THREADS:
            _run_sync_inline()
        low = server._lowlevel_server
        info = low.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)
        super().__init__(server, low, info, tasks)
        server._subscriptions.subscribe(self._bus_event)  # ctx.notify_*() reach the engine's sessions

    def sdk_methods(self) -> list[str]:
        return list(self.low._request_handlers)

    def sdk_capabilities(self) -> dict:
        return self.low.get_capabilities().model_dump(by_alias=True, mode="json", exclude_none=True)

    def _bus_event(self, event: Any) -> None:
        name = type(event).__name__
        if name == "ResourceUpdated":
            self.notify_resource_updated(str(event.uri))
        elif name in ("ToolsListChanged", "ResourcesListChanged", "PromptsListChanged"):
            self._changed(name[: -len("ListChanged")].lower())

    async def call(self, ctx: Context, method: str, params: dict) -> Any:
        state = await self.lifespan.state()
        channel = Channel(self, ctx)
        version = SDK_MODERN_STAND_IN if ctx.host.modern else ctx.protocol_version
        client = InitializeRequestParams.model_validate({
            "protocolVersion": version, "capabilities": ctx.client_capabilities or {},
            "clientInfo": ctx.client_info or _UNKNOWN_CLIENT})
        connection = Connection(_Outbound(channel), protocol_version=version, session_id=ctx.session_id,
                                client_params=client)
        try:
            return await ServerRunner(self.low, connection, state).on_request(
                _Dispatch(channel, ctx.request_id), method, params)
        except MCPError as exc:
            raise ProtocolError(exc.code, exc.message, UNSET if exc.data is None else exc.data) from None
        except pydantic.ValidationError as exc:
            raise invalid(method, exc) from None
        except ValueError as exc:
            raise bad_params(method, exc) from None
        finally:
            channel.open = False

