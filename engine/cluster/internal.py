"""The endpoint other processes of the cluster call: on a port of its own, signed calls only.

Three calls, each a POST (``engine.cluster.peer_http`` signs and sends them):

- ``/forward``: a session's request, admitted by the process that received it (the HTTP
  rules and the token check ran there) and sent here because this process holds the
  session: the route in a header, the body as it came. It is served as if it had arrived
  here (``Front.serve``), and the response, an SSE stream included, goes back as it is.
- ``/task``: an operation on a task actor (``engine.actors.links``' wire).
- ``/link``: a task's call to its session.

A call for an actor this process does not hold, and cannot take over because a live
process holds it, answers 421 with ``x-mcp-actors-moved``: the caller asks the database
again. Such a call is never sent on from here, so a request cannot go round in circles.
Anything unsigned, badly signed or stale gets 403 and nothing else.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import msgspec

from ..actors import log_context, tracing
from ..actors.front import ActorElsewhere, Front
from ..local.asgi import send_response
from ..protocol import http, router
from ..protocol.jsonrpc import Message
from ..protocol.storage import StoreUnavailable
from . import peer_http

log = logging.getLogger("engine")

FORWARD, TASK, LINK = "/forward", "/task", "/link"
ROUTE_HEADER = peer_http.PREFIX + "route"
OP_HEADER = peer_http.PREFIX + "op"
ID_HEADER = peer_http.PREFIX + "id"
OWNER_HEADER = peer_http.PREFIX + "owner"
TASK_HEADER = peer_http.PREFIX + "task"
MOVED_HEADER = peer_http.PREFIX + "moved"
#: Bytes of a call's body beyond the endpoint's own limit (a forwarded body is at most that).
_SLACK = 64 * 1024

_decode_route = msgspec.json.Decoder(router.Route).decode
_REFUSED = [(b"content-type", b"text/plain"), (b"content-length", b"0")]


class _Pinned:
    """The front's ActorHost for a forwarded request: the one actor already resolved here.
    (``runtime`` is the ClusterRuntime, which builds this module's endpoint: typed loosely,
    so that this module need not import it back.)"""

    __slots__ = ("runtime", "actor")

    def __init__(self, runtime: Any, actor: Any):
        self.runtime = runtime
        self.actor = actor

    async def activate(self, session_id: str | None, create: bool) -> Any:
        return self.actor

    def forget(self, actor: Any) -> None:
        self.runtime.forget(actor)

    def listen(self, msg: Message, owner: str = "") -> Any:  # pragma: no cover - never forwarded
        return self.runtime.listen(msg, owner)

    @property
    def tasks(self) -> Any:
        return self.runtime.tasks


class Internal:
    """The ASGI handler of the internal port (see the module doc)."""

    def __init__(self, runtime: Any, front: Front, port: Callable[[], int]):
        self.runtime = runtime
        self.front = front
        self._port = port
        self.limit = front.config.max_body + _SLACK

    @property
    def port(self) -> int:
        return self._port()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        body = await self._body(receive)
        path = scope["path"]
        why = "not a POST" if scope["method"] != "POST" else (
            "too large" if body is None else peer_http.verify(self.runtime.key, path, headers, body))
        if why is not None:
            log.warning("cluster: refused a call to %s (%s)", path, why)
            await self._plain(send, 403)
            return
        assert body is not None
        try:
            if path == FORWARD:
                await self._forward(headers, body, receive, send)
            elif path == TASK:
                status, reply = await self.runtime.task_call_here(headers.get(OP_HEADER, ""), headers.get(ID_HEADER, ""),
                                                                  headers.get(OWNER_HEADER, ""), body)
                await self._plain(send, status, reply)
            elif path == LINK:
                status, reply = await self.runtime.link_here(headers.get(ID_HEADER, ""), headers.get(OP_HEADER, ""),
                                                             headers.get(TASK_HEADER, ""), body)
                await self._plain(send, status, reply)
            else:
                await self._plain(send, 404)
        except ActorElsewhere:
            await self._plain(send, 421, extra=[(MOVED_HEADER.encode(), b"1")])

    async def _forward(self, headers: dict[str, str], body: bytes, receive: Callable, send: Callable) -> None:
        try:
            route = _decode_route(headers.get(ROUTE_HEADER, "").encode())
        except msgspec.DecodeError:
            await self._plain(send, 400)
            return
        msg = http.decode_body(body) if route.needs_body and body else None
        if msg is not None:
            log_context.serving(route.session_id, msg, headers.get("traceparent"))
        span = None
        try:
            try:
                actor = await self.runtime.get_here(route.session_id or "")
            except StoreUnavailable:  # the database is away: the client hears the 503 it would from here
                response = self.front.error(http.store_unavailable(msg), route, None)
            else:
                span = tracing.start(tracing.FORWARDED, {"mcp.method.name": msg.method} if msg and msg.method else None,
                                     "server", parent=headers)
                response = await self.front.serve(route, msg, _Pinned(self.runtime, actor))
            await send_response(self.front, response, receive, send)
        finally:
            tracing.end(span)

    async def _body(self, receive: Callable) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _plain(send: Callable, status: int, body: bytes = b"",
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        head = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(body))] \
            if body else list(_REFUSED)
        await send({"type": "http.response.start", "status": status, "headers": head + (extra or [])})
        await send({"type": "http.response.body", "body": body})
