"""The Durable Object that hosts one session's actor: the Cloudflare runtime adapter.

One object per session, addressed by the session id. The Worker front has already applied
the HTTP rules and routed the request (engine.router); it forwards the Route in a header
and the body as the body. Here the object wakes the actor from its storage (or makes it,
for a new session), lets ``serve()`` do the rest, and turns the Reply into a Response: a
streamed one, from a TransformStream fed by a task, when the reply is an open SSE stream.

What keeps an object awake: an open SSE response (its pump task is waiting on the
connection) and handlers still running. With no stream open and nothing running, the
runtime may evict it; the next request or the alarm wakes it from storage with the same
state, because everything the actor knows is in storage.
"""

from __future__ import annotations

import asyncio

import msgspec

import js
from pyodide.ffi import create_proxy, to_js
from workers import DurableObject, Response

from engine import http, protocol, router, storage_contract
from engine.actor import SessionActor
from engine.connection import Connection, Reply
from engine.http import HttpError

import worker_settings
from do_storage import DurableObjectStorage

ROUTE_HEADER = "x-mcp-actors-route"
CONTRACT_HEADER = "x-mcp-actors-contract"
SESSION_HEADER = "x-mcp-actors-session"

_SSE_HEADERS = {"content-type": protocol.CONTENT_SSE, "cache-control": "no-cache, no-transform"}
_JSON_HEADERS = {"content-type": protocol.CONTENT_JSON}
_decode_route = msgspec.json.Decoder(router.Route).decode
json_encode = msgspec.json.Encoder().encode
_apps: dict = {}


def error_response(exc: HttpError, extra: tuple = ()) -> Response:
    headers = dict(_JSON_HEADERS)
    headers.update(dict(extra + exc.headers))
    return Response(exc.body(), status=exc.status, headers=headers)


class SessionObject(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.settings = worker_settings.from_env(env)
        app = _apps.get(self.settings.app_spec)
        if app is None:
            app = _apps[self.settings.app_spec] = worker_settings.load_app(self.settings.app_spec)
        self.app = app
        self.storage = DurableObjectStorage(ctx.storage, to_js, create_proxy)
        self.actor: SessionActor | None = None
        self._alarm_loaded = False

    async def _wake(self, session_id: str | None, create: bool) -> SessionActor | None:
        if self.actor is None:
            if not self._alarm_loaded:
                await self.storage.load_alarm()
                self._alarm_loaded = True
            stored = self.storage.get("id")
            if create:
                self.storage.put("id", session_id.encode())  # type: ignore[union-attr]
            elif stored is None:
                return None  # nothing was ever stored here: no such session
            else:
                session_id = stored.decode()
            self.actor = SessionActor(session_id, self.app, self.storage, self.settings.http,  # type: ignore[arg-type]
                                      self.settings.lifetimes, fresh=create)
        return self.actor

    async def fetch(self, request):
        check = request.headers.get(CONTRACT_HEADER)
        if check:  # a test hook (MCP_ACTORS_TEST_HOOKS=1): this object is a fresh namespace
            return await self._contract(check)
        route = _decode_route(request.headers.get(ROUTE_HEADER))
        session_id = request.headers.get(SESSION_HEADER)
        body = await request.bytes() if route.needs_body else b""
        msg = http.decode_body(body) if body else None
        try:
            actor = await self._wake(session_id, route.action in router.CREATES)
            if actor is None:
                raise http.session_not_found(session_id or "", msg)
            if route.action in router.CREATES:
                actor.arm(route.transport)
            reply = await actor.serve(route, msg)
            if actor.closed:
                self.actor = None
        except HttpError as exc:
            return error_response(exc, route.headers)
        return self._respond(reply, route.headers + reply.headers, request)

    def _respond(self, reply: Reply, extra: tuple, request) -> Response:
        if reply.content_type is None:
            return Response(None, status=reply.status, headers=dict(extra) or None)
        headers = dict(_SSE_HEADERS if reply.content_type == protocol.CONTENT_SSE else _JSON_HEADERS)
        headers.update(dict(extra))
        conn = reply.connection
        if conn is None:
            return Response(reply.body, status=reply.status, headers=headers)
        stream = js.TransformStream.new()
        writer = stream.writable.getWriter()
        task = asyncio.get_running_loop().create_task(self._pump(writer, reply.body, conn))

        def client_left(*_):
            # A write to a client that left never settles: end the pump from here.
            conn.close()
            task.cancel()

        signal = getattr(request.js_object, "signal", None)
        if signal is not None:
            signal.addEventListener("abort", create_proxy(client_left))
        return Response(stream.readable, status=reply.status, headers=headers)

    async def _pump(self, writer, head: bytes, conn: Connection) -> None:
        try:
            if head:
                await writer.write(to_js(head))
            while True:
                data = await conn.next(self.settings.keepalive)
                if data is None:
                    break
                await writer.write(to_js(data))
            await writer.close()
        except BaseException:  # the client went away; its events stay in the log
            pass
        finally:
            conn.owner.detach(conn)

    async def _contract(self, check: str) -> Response:
        try:
            await storage_contract.run(check, self.storage)
        except Exception as exc:  # report, so the test shows what broke
            return Response(json_encode({"check": check, "error": f"{type(exc).__name__}: {exc}"}).decode(),
                            status=500, headers=_JSON_HEADERS)
        return Response(json_encode({"check": check, "ok": True}).decode(), headers=_JSON_HEADERS)

    async def alarm(self, *_args):
        actor = await self._wake(None, create=False)
        if actor is None:
            return
        if await actor.alarm():
            actor.end()
            self.actor = None
            await self.storage.flush()
