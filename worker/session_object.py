"""The Durable Object that hosts one session's actor: the Cloudflare runtime adapter.

One object per session, addressed by the session id. The Worker front has already applied
the HTTP rules (``Front.admit``); it forwards the Route in a header and the body as the
body. Here the object is the front's :class:`~engine.actors.front.ActorHost` for its one
actor (woken from the object's storage, or made for a new session), ``Front.serve`` does
the rest, and the answer becomes a Response: a streamed one, from a TransformStream fed by
``Front.pump``, when it is an open SSE stream.

What keeps an object awake: an open SSE response (its pump task is waiting on the
connection) and handlers still running. With no stream open and nothing running, the
runtime may evict it; the next request or the alarm wakes it from storage with the same
state, because everything the actor knows is in storage.
"""

from __future__ import annotations

import logging

import msgspec

from pyodide.ffi import create_proxy, to_js
from workers import DurableObject, Response

from engine.actors import links, log_context
from engine.actors.front import Front, SessionUnreadable
from engine.actors.listen_hub import ListenHub
from engine.actors.session_actor import SessionActor
from engine.protocol import http, router

import config
import contract_hook
import hub
import keys
import log_lines
import profiling
import task_link
from do_storage import DurableObjectStorage
from internal import Outbox, header
from responses import respond

ROUTE_HEADER = "x-mcp-actors-route"

_decode_route = msgspec.json.Decoder(router.Route).decode


class SessionObject(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        log_lines.install(env)
        self.settings = config.settings(env)
        self.app = config.app(env)
        self.front = Front(self.settings, self.app)
        self.storage = DurableObjectStorage(ctx.storage, to_js, create_proxy)
        self.actor: SessionActor | None = None
        self._alarm_loaded = False
        #: Only in the hub's object (hub.HUB_OBJECT): the open 2026-07-28 listen streams.
        self.hub: ListenHub | None = None
        self.outbox = Outbox()  # this object's announcements (see hub.py)
        self.cut = profiling.cut(env, "object")

    # -- the front's ActorHost: this object hosts exactly one actor -------------------------

    async def activate(self, session_id: str | None, create: bool) -> SessionActor | None:
        if self.actor is not None and self.actor.closed:
            self.actor = None  # it could not commit: wake a fresh one from what was stored
        if self.actor is None:
            if not self._alarm_loaded:
                await self.storage.load_alarm()
                self._alarm_loaded = True
            stored = self.storage.get("id")
            if create:
                self.storage.put("id", (session_id or "").encode())
            elif stored is None:
                return None  # nothing was ever stored here: no such session
            else:
                session_id = stored.decode()
            try:
                self.actor = SessionActor(session_id or "", self.app, self.storage, self.settings.http,
                                          self.settings.lifetimes, fresh=create, directory=await config.tasks(self.env))
            except Exception as exc:
                logging.getLogger("engine").error("session %s: its stored state cannot be loaded: %r",
                                                  session_id, exc)
                raise SessionUnreadable(session_id) from None
        return self.actor

    def forget(self, actor: SessionActor) -> None:
        self.actor = None

    def _hub(self) -> ListenHub:
        if self.hub is None:
            lifetimes = self.settings.lifetimes
            self.hub = ListenHub(lifetimes.max_buffer, lifetimes.max_subscriptions)
        return self.hub

    def listen(self, msg, owner: str = ""):
        return self._hub().listen(msg, owner)

    @property
    def tasks(self):
        return None  # only 2026-07-28 listen streams reach an object; the Worker serves the rest

    # -- requests ------------------------------------------------------------------------------

    async def fetch(self, request):
        hub.use_outbox(self.outbox)
        if header(request, keys.HEADER):  # this object keeps the Worker's signing key
            key = keys.stored_key(self.storage)
            await self.storage.flush()
            return Response(key)
        kind = header(request, hub.ANNOUNCE_HEADER)
        if kind:  # the hub's object: fan an announcement out
            announcement = hub.decode_announcement(await request.bytes())
            if kind == hub.TASK:
                return Response(str(self._hub().announce_task(*announcement)))
            return Response(str(self._hub().announce(*announcement)))
        link = header(request, task_link.LINK_HEADER)
        if link:  # one of this session's tasks, from its own object
            actor = await self._linked()
            status, body = await links.serve_link(actor, link, header(request, task_link.TASK_HEADER) or "",
                                                 await request.bytes())
            return Response(body or None, status=status)
        check = header(request, contract_hook.HEADER)
        if check and config.test_hooks(self.env):  # this object is a fresh namespace
            return await contract_hook.run(check, self.storage)
        route = _decode_route(header(request, ROUTE_HEADER))
        body = await request.bytes() if route.needs_body else b""
        msg = http.decode_body(body) if body else None
        cut = profiling.cut_short(self.cut, msg)
        if cut is not None:
            return cut
        if msg is not None:
            log_context.serving(route.session_id, msg, header(request, "traceparent"))
        response = await self.front.serve(route, msg, self)
        await config.announcer(self.env).drain()  # announcements a handler made reach the hub
        return respond(self.front, response, request)

    async def _linked(self) -> SessionActor | None:
        try:
            return await self.activate(None, create=False)
        except SessionUnreadable:
            return None

    async def alarm(self, *_args):
        hub.use_outbox(self.outbox)
        actor = await self.activate(None, create=False)
        if actor is None:
            return
        if await actor.alarm():
            actor.end()
            self.actor = None
            await self.storage.flush()
