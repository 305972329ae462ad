"""The local server's HTTP adapter: raw ASGI around :mod:`engine.http` and the actors.

Raw ASGI because this is the hot path: no framework objects, no per-request task groups.
The only task this module creates is one per long-lived SSE response, to notice when the
client goes away.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from . import http, protocol, router
from .connection import Connection, Reply
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
    """Header names (lower case, as ASGI servers give them) to values; repeats are joined."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key in out:
            out[key] = f"{out[key]}, {value.decode('latin-1')}"
        else:
            out[key] = value.decode("latin-1")
    return out


async def _read_body(receive: Callable, config: http.HttpConfig) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > config.max_body:
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
        self.paths = router.Paths(mcp=path, sse=sse_path or None, messages=messages_path or None)
        self.keepalive = keepalive

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
        r: router.Route | None = None
        try:
            r = router.route(scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
                             headers, self.paths, self.config, scope.get("root_path", ""))
            msg = router.admit(r, headers, await _read_body(receive, self.config)) if r.needs_body else None
            if r.action == router.PREFLIGHT:
                reply = Reply(204, None)
            elif r.action in router.CREATES:
                reply = await self.runtime.create(r.transport).serve(r, msg)
            else:
                actor = self.runtime.get(r.session_id)  # type: ignore[arg-type]
                if actor is None:
                    raise http.session_not_found(r.session_id or "", msg)
                reply = await actor.serve(r, msg)
                if actor.closed:
                    self.runtime.forget(actor.session.id)
        except HttpError as exc:
            # CORS on errors too, so a page can read why; never for a refused Origin or Host.
            cors = r.headers if r else (() if exc.status in (403, 421) else router.cors_headers(headers))
            extra = [(k.encode(), v.encode()) for k, v in cors + exc.headers]
            await _send_whole(send, exc.status, _JSON_HEADERS + extra, exc.body())
            return
        except ConnectionResetError:
            return
        extra = [(k.encode(), v.encode()) for k, v in r.headers + reply.headers]
        await self._send(send, receive, reply, extra)

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
