"""The local server's HTTP adapter: raw ASGI around :mod:`engine.http` and the actors.

Raw ASGI because this is the hot path: no framework objects, no per-request task groups.
The only task this module creates is one per long-lived SSE response, to notice when the
client goes away.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from msgspec import UNSET

from . import http, protocol
from .actor import Connection, Reply, SessionActor
from .http import HttpError
from .local import LocalRuntime

Headers = list[tuple[bytes, bytes]]

_SSE_HEADERS: Headers = [
    (b"content-type", protocol.CONTENT_SSE.encode()),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
_JSON_HEADERS: Headers = [(b"content-type", protocol.CONTENT_JSON.encode())]


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


async def _read_body(receive: Callable, limit: int, config: http.HttpConfig) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise http.body_too_large(config)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class McpAsgi:
    """ASGI application serving one MCP endpoint (default ``/mcp``)."""

    def __init__(self, runtime: LocalRuntime, path: str = "/mcp", keepalive: float = 15.0,
                 sse_path: str | None = protocol.DEFAULT_SSE_PATH,
                 messages_path: str | None = protocol.DEFAULT_MESSAGES_PATH):
        """``sse_path``/``messages_path``: the 2024-11-05 HTTP+SSE transport (None: off)."""
        self.runtime = runtime
        self.config = runtime.config
        self.path = path
        self.keepalive = keepalive
        self.sse_path = sse_path if sse_path and messages_path else None
        self.messages_path = messages_path if self.sse_path else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.runtime.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = _headers(scope)
        extra: Headers = []
        try:
            path = scope["path"]
            if path != self.path and path != self.sse_path and path != self.messages_path:
                raise HttpError(404, protocol.INVALID_REQUEST, f"Not Found: the MCP endpoint is {self.path}")
            http.check_host_and_origin(headers, self.config)
            origin = headers.get("origin")
            if origin is not None:
                extra = [(b"access-control-allow-origin", origin.encode("latin-1")),
                         (b"access-control-expose-headers", b"mcp-session-id"),
                         (b"vary", b"origin")]
            method = scope["method"]
            if path != self.path:
                reply = await self._legacy(scope, method, headers, receive)
            elif method == "POST":
                reply, session_id = await self._post(headers, receive)
                if session_id is not None:
                    extra.append((b"mcp-session-id", session_id.encode()))
            elif method == "GET":
                reply = await self._get(headers)
            elif method == "DELETE":
                reply = self._delete(headers)
            elif method == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
                extra += [(b"access-control-allow-methods", protocol.ALLOWED_METHODS.encode()),
                          (b"access-control-allow-headers", b"content-type, accept, authorization, "
                           b"mcp-session-id, mcp-protocol-version, last-event-id"),
                          (b"access-control-max-age", b"86400")]
                reply = Reply(204, None)
            else:
                raise http.method_not_allowed(method)
        except HttpError as exc:
            extra += [(k.encode(), v.encode()) for k, v in exc.headers]
            await _send_whole(send, exc.status, _JSON_HEADERS + extra, exc.body())
            return
        except ConnectionResetError:
            return
        await self._send(send, receive, reply, extra)

    async def _post(self, headers: dict[str, str], receive: Callable) -> tuple[Reply, str | None]:
        http.check_post(headers, self.config)
        msg = http.decode_body(await _read_body(receive, self.config.max_body, self.config))
        requested = http.era(headers, msg)
        if requested not in protocol.SESSION_VERSIONS:
            raise http.stateless_not_served(requested, msg)  # the stateless era slots in here
        if msg.method == protocol.INITIALIZE and msg.id is not UNSET:
            if protocol.HEADER_SESSION_ID in headers:
                raise http.initialize_with_session(msg)
            actor = self.runtime.create()
            return await actor.post(msg), actor.session.id
        http.check_version_header(headers, msg)
        actor = self._actor(http.require_session(headers, msg), msg)
        return await actor.post(msg), None

    async def _get(self, headers: dict[str, str]) -> Reply:
        http.check_get(headers)
        requested = http.era(headers)
        if requested not in protocol.SESSION_VERSIONS:
            raise http.stateless_not_served(requested)
        http.check_version_header(headers)
        actor = self._actor(http.require_session(headers))
        return await actor.get(headers.get(protocol.HEADER_LAST_EVENT_ID))

    def _delete(self, headers: dict[str, str]) -> Reply:
        http.check_version_header(headers)
        session_id = http.require_session(headers)
        self._actor(session_id)  # 404 for unknown ones, and for the other transport's
        self.runtime.delete(session_id)
        return Reply(204, None)

    def _actor(self, session_id: str, msg: Any = None, transport: str = protocol.TRANSPORT_STREAMABLE) -> SessionActor:
        actor = self.runtime.get(session_id)
        if actor is None:
            raise http.session_not_found(session_id, msg)
        if actor.session.state.transport != transport:
            raise http.legacy_session_mismatch(actor.session.state.transport)
        return actor

    async def _legacy(self, scope: dict, method: str, headers: dict[str, str], receive: Callable) -> Reply:
        """The 2024-11-05 HTTP+SSE transport: GET opens a session's stream, POSTs feed it."""
        if scope["path"] == self.sse_path:
            if method != "GET":
                raise http.method_not_allowed(method, "GET", "the HTTP+SSE stream endpoint")
            http.check_get(headers)
            actor = self.runtime.create(protocol.TRANSPORT_SSE)
            endpoint = (f"{scope.get('root_path', '')}{self.messages_path}"
                        f"?{protocol.LEGACY_SESSION_PARAM}={actor.session.id}")
            return await actor.open_legacy_stream(endpoint)
        if method != "POST":
            raise http.method_not_allowed(method, "POST", "the HTTP+SSE message endpoint")
        http.check_legacy_post(headers, self.config)
        session_id = http.legacy_session(scope.get("query_string", b"").decode("latin-1"))
        actor = self._actor(session_id, transport=protocol.TRANSPORT_SSE)
        msg = http.decode_body(await _read_body(receive, self.config.max_body, self.config))
        return await actor.post(msg)

    async def _send(self, send: Callable, receive: Callable, reply: Reply, extra: Headers) -> None:
        if reply.content_type is None:
            await _send_whole(send, reply.status, extra, b"")
            return
        base = _SSE_HEADERS if reply.content_type == protocol.CONTENT_SSE else _JSON_HEADERS
        conn = reply.connection
        if conn is None:
            await _send_whole(send, reply.status, base + extra, reply.body)
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": base + extra})
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, conn))
        try:
            if reply.body:
                await send({"type": "http.response.body", "body": reply.body, "more_body": True})
            while True:
                data = await conn.next(self.keepalive)
                if data is None:
                    break
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away; its events stay in the log for resumption
        finally:
            watcher.cancel()
            conn.owner.detach(conn)


async def _watch_disconnect(receive: Callable, conn: Connection) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            conn.close()
            return


async def _send_whole(send: Callable, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
