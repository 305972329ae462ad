"""The Cloudflare Worker front: stateless, it applies the HTTP rules and routes to sessions.

It translates a fetch into :meth:`engine.actors.front.Front.admit`, the same rules in the
same order as the local server: a bad request is answered here, and no Durable Object is
touched. A 2026-07-28 request needs no durable state, so it is served here too
(``Front.serve_modern``), except a ``subscriptions/listen`` stream, which lives in the
listen hub's object (``hub.py``). A new session (``initialize``, or GET on the HTTP+SSE
path) gets a freshly minted, signed id; any other session request goes to the Durable
Object named by its session id, if that id is genuine. The route travels to an object in
a header and the body as the body; the object does the rest (``session_object.py``).
"""

from __future__ import annotations

from urllib.parse import urlparse

import msgspec

from workers import Response, WorkerEntrypoint

from engine.actors import log_context
from engine.actors.front import Front, str_headers
from engine.protocol import http, router

import config
import contract_hook
import hub
import internal
import keys
import log_lines
import profiling
import session_ids
from hub import HUB_OBJECT
from internal import Outbox
from responses import respond
from session_object import ROUTE_HEADER, SessionObject
from task_object import TaskObject

__all__ = ["Default", "SessionObject", "TaskObject"]  # the runtime finds the Durable Object classes here

_encode = msgspec.json.Encoder().encode
_fronts: dict = {}


async def _drain(request, headers: dict, limit: int) -> None:
    """Read the body of a request refused before it was read, if it is within the body limit.
    workerd closes a connection whose request body it did not read, and a client that sent
    its body a moment after the head, and its next request on the same connection, then finds
    the connection closed under it (``Server disconnected`` without any answer). Past the
    limit the connection may go: the client was told it sent too much."""
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError:
        return
    if 0 < length <= limit:
        try:
            await request.bytes()
        except Exception:  # the client went away: nothing to keep alive
            pass


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        hub.use_outbox(Outbox())  # this request's own (see hub.py)
        log_lines.install(self.env)
        front = _fronts.get("front")
        if front is None:
            front = _fronts["front"] = Front(config.settings(self.env), config.app(self.env),
                                             gate=config.gate(self.env))
            _fronts["profile"], _fronts["cut"] = profiling.enabled(self.env), profiling.cut(self.env, "worker")
        url = urlparse(request.url)
        if _fronts["profile"]:
            if url.path == profiling.PATH:
                return Response(profiling.report("reset" in url.query))
            profiling.start()
        if url.path.startswith(contract_hook.PATH) and config.test_hooks(self.env):
            return await internal.call(self.env.SESSIONS, f"contract-{session_ids.mint('contract')}",
                                       {contract_hook.HEADER: url.path[len(contract_hook.PATH):]})
        headers = internal.headers_of(request)
        read = []

        async def read_body(_limit: int) -> bytes:
            read.append(True)
            return await request.bytes()

        admitted = await front.admit(request.method, url.path, url.query, headers, read_body,
                                     base_url=f"{url.scheme}://{url.netloc}")
        if not isinstance(admitted, tuple):
            if not read:
                await _drain(request, headers, front.config.max_body)
            return Response(admitted.body or None, status=admitted.status, headers=str_headers(admitted.headers))
        r, msg, body = admitted
        if msg is not None:
            log_context.serving(r.session_id, msg, headers.get("traceparent"))
        if r.action in (router.MODERN, router.MODERN_ACCEPT):
            front.state_key = await config.state_key(self.env)
            response = await front.serve_modern(r, msg, None, await config.tasks(self.env))
            await config.announcer(self.env).drain()  # announcements it made have reached the hub
            return respond(front, response, request)
        if r.action == router.SUBSCRIBE:
            return await self._forward(HUB_OBJECT, r, body, request, headers)
        secret = await keys.signing_key(self.env, front.settings.secret)
        if r.action in router.CREATES:
            r.session_id = session_ids.mint(secret)
        elif not session_ids.genuine(secret, r.session_id or ""):
            refused = front.error(http.session_not_found(r.session_id or "", msg), r, headers)
            return Response(refused.body, status=refused.status, headers=str_headers(refused.headers))
        cut = profiling.cut_short(_fronts["cut"], msg)
        if cut is not None:
            return cut
        return await self._forward(r.session_id, r, body, request, headers)

    async def _forward(self, name: str, r: router.Route, body: bytes, request, headers: dict):
        forwarded = {ROUTE_HEADER: _encode(r).decode()}
        traceparent = headers.get("traceparent")
        if traceparent:  # the object's log lines name the same trace
            forwarded["traceparent"] = traceparent
        return await internal.call(self.env.SESSIONS, name, forwarded, body, signal=request.js_object.signal)
