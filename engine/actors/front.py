"""The HTTP front every runtime shares: from a request's head and body to a response.

A runtime adapter translates its own I/O into calls here and nothing more: the local ASGI
app (:mod:`engine.local.asgi`), the Worker's fetch handler and its Durable Object
(``worker/``). The front applies the HTTP rules in their order (:mod:`engine.protocol.router`),
finds or creates the actor through the runtime's :class:`ActorHost`, calls it, and turns
its :class:`~engine.actors.connection.Reply` into a :class:`Response` with the right
headers; for a streaming reply, :meth:`Front.pump` feeds the connection's events into the
runtime's :class:`Writer` until the stream ends or the peer goes away.

The Worker splits the work in two because its actors live elsewhere: the stateless fetch
handler calls :meth:`Front.admit` (a bad request is answered there and no Durable Object is
touched) and forwards the route; the Durable Object calls :meth:`Front.serve`. The local
server does both at once (:meth:`Front.handle`).

Headers are ASGI-style ``(bytes, bytes)`` pairs, the form the hot path needs; the Worker
decodes them.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Mapping, Protocol

import msgspec

from ..app.context import CapabilityError
from ..protocol import http, modern, operator, router, spec
from ..protocol.auth import owner_of
from ..protocol.http import HttpError
from ..protocol.jsonrpc import Message, ProtocolError
from ..protocol.router import Route
from ..protocol.storage import StoreUnavailable
from . import log_context, stateless, tracing
from .connection import Connection, Reply
from .session_actor import SessionActor
from .auth import Gate
from .session_tasks import TaskDirectory
from .settings import Settings

log = logging.getLogger("engine")

Headers = list[tuple[bytes, bytes]]

_MODERN = frozenset({router.MODERN, router.SUBSCRIBE, router.MODERN_ACCEPT})
_ACCEPTED = Reply(202, None)

SSE_HEADERS: Headers = [
    (b"content-type", spec.CONTENT_SSE.encode()),
    (b"cache-control", b"no-cache, no-transform"),
    # Reverse proxies (nginx and its kin) must not hold events back in a buffer.
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS: Headers = [(b"content-type", spec.CONTENT_JSON.encode())]


class Response:
    """What to answer: status, headers, a body sent at once, and for an open SSE stream
    the connection whose events follow (see :meth:`Front.pump`)."""

    __slots__ = ("status", "headers", "body", "stream", "message", "trace")

    def __init__(self, status: int, headers: Headers, body: bytes = b"", stream: Connection | None = None):
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
        #: The request it answers, once decoded (for telemetry: its method, its tool).
        self.message: Message | None = None
        #: Its span while tracing is on (:mod:`.tracing`), ended once the answer is sent.
        self.trace: object = None


class SessionUnreadable(Exception):
    """The session exists but its stored state cannot be loaded (the host logged why)."""


class ActorElsewhere(Exception):
    """The actor is active in another process (a cluster): ``relay(route, body)`` carries
    the request there and gives its response, or None when that process no longer holds
    the actor (the front then asks its host again)."""

    def __init__(self, relay: Callable[[Route, bytes], Awaitable["Response | None"]]):
        super().__init__("the actor is active in another process")
        self.relay = relay


#: How often one request may be sent on after the actor moved between processes.
_RELAYS = 3


class ActorHost(Protocol):
    """How a runtime finds its session actors: the local registry, or a Durable Object
    that hosts exactly one. A closed actor is never handed out again: the host wakes a
    fresh one from storage."""

    async def activate(self, session_id: str | None, create: bool) -> SessionActor | None:
        """A new session's actor (``create``; ``session_id`` None lets the host pick the
        id), or an existing session's, woken from storage if need be; None if unknown.
        Raises :class:`SessionUnreadable` when its stored state cannot be loaded, and
        :class:`ActorElsewhere` when another process holds it."""
        ...

    def forget(self, actor: SessionActor) -> None:
        """The actor ended its session (DELETE): drop any reference to it."""
        ...

    def listen(self, msg: Message, owner: str = "") -> Reply:
        """A 2026-07-28 ``subscriptions/listen`` stream, from the host's listen hub; ``owner``:
        the principal it belongs to (it hears only of that principal's tasks)."""
        ...

    @property
    def tasks(self) -> TaskDirectory | None:
        """Where tasks live (None: this host serves none)."""
        ...


class Writer(Protocol):
    """A streaming response body in the runtime's own terms. Either method raises
    ``ConnectionError`` (an ``OSError``) when the peer has gone."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


def _base_url(headers: Mapping[str, str]) -> str:
    """``scheme://host`` a request was addressed to, as far as its headers say (a proxy's
    ``x-forwarded-proto`` counts; configure ``--auth-resource`` where that is not enough)."""
    scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip() or "http"
    return f"{scheme}://{headers.get('host', 'localhost')}"


def _encode(pairs: tuple[tuple[str, str], ...]) -> Headers:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


class Front:
    __slots__ = ("settings", "app", "config", "paths", "keepalive", "max_headers", "state_key", "header_paths",
                 "gate")

    def __init__(self, settings: Settings, app: Any = None, state_key: bytes = b"", gate: Gate | None = None):
        """``app``: what 2026-07-28 requests are served from, here in the front (they need
        no actor); ``state_key``: seals their ``requestState`` (the same on every replica);
        ``gate``: checks access tokens (None: the server is open)."""
        self.gate = gate
        self.settings = settings
        self.app = app
        self.config = settings.http
        self.paths = settings.paths
        self.keepalive = settings.keepalive
        self.max_headers = settings.server.max_headers
        self.state_key = state_key
        self.header_paths = app.header_paths if app is not None else (lambda tool: None)

    # -- the request -----------------------------------------------------------------------

    async def admit(self, method: str, path: str, query: str, headers: Mapping[str, str],
                    read_body: Callable[[int], Awaitable[bytes]], root_path: str = "", base_url: str = ""
                    ) -> tuple[Route, Message | None, bytes] | Response:
        """The HTTP rules: the routed request with its decoded message and raw body, or the
        response that ends it here (an error, or a CORS preflight).

        ``read_body(limit)`` reads the whole body; it may stop early with
        :func:`engine.protocol.http.body_too_large` once ``limit`` bytes are exceeded.
        ``base_url`` (``scheme://host``, as the request was addressed) names the resource
        when authorization has none configured.
        """
        r: Route | None = None
        gate = self.gate
        try:
            if len(headers) > self.max_headers:  # the local server refuses sooner; Workers get it here
                raise http.head_too_large(self.max_headers, self.settings.server.max_head_bytes)
            if gate is not None and path[len(root_path):] in gate.metadata_paths():
                return self._metadata(method, base_url or _base_url(headers) + root_path)
            principal = None
            if gate is not None and not router.is_preflight(method, headers):
                # The token first: a caller without one hears 401 and how to get one, not
                # which of the other rules its request breaks.
                router.endpoint(path, headers, self.paths, self.config, root_path)
                base_url = (base_url or _base_url(headers)) + root_path
                principal = await gate.admit(headers, query, base_url)
            r = router.route(method, path, query, headers, self.paths, self.config, root_path)
            if r.action == router.PREFLIGHT:
                return Response(204, _encode(r.headers))
            r.principal = principal
            if not r.needs_body:
                return r, None, b""
            body = await read_body(self.config.max_body)
            if len(body) > self.config.max_body:
                raise http.body_too_large(self.config.max_body)
            msg = router.admit(r, headers, body, self.header_paths, self.settings.modern)
            if gate is not None and msg.method == "tools/call" and isinstance(msg.params, dict):
                name = msg.params.get("name")
                tool = self.app.tools.get(name) if isinstance(name, str) and self.app is not None else None
                if tool is not None and getattr(tool, "scopes", ()):
                    gate.allow(r.principal, tool.scopes, f"the tool {name!r}", base_url)  # type: ignore[arg-type]
            return r, msg, body
        except HttpError as exc:
            return self.error(exc, r, headers)

    def _metadata(self, method: str, base_url: str) -> Response:
        """The Protected Resource Metadata (RFC 9728): public, readable from any page."""
        cors = (("access-control-allow-origin", "*"), ("access-control-allow-methods", "GET, OPTIONS"))
        if method == "OPTIONS":
            return Response(204, _encode(cors + (("access-control-allow-headers", "mcp-protocol-version"),)))
        if method != "GET":
            return self.error(http.method_not_allowed(method, "GET, OPTIONS", "the resource metadata"), None, {})
        body = msgspec.json.encode(self.gate.metadata(base_url))  # type: ignore[union-attr]
        return Response(200, JSON_HEADERS + [(b"content-length", b"%d" % len(body))]
                        + _encode(cors + (("cache-control", "public, max-age=3600"),)), body)

    async def serve(self, r: Route, msg: Message | None, host: ActorHost, body: bytes = b"") -> Response:
        """Find or create the route's actor, let it serve the request, and shape the reply;
        where another process holds the actor, relay the request (``body``: as it came) there.

        Faults stay with their session: an unreadable one answers 404, a failed commit 503
        (the actor is replaced by one woken from storage), anything else 500; the error is
        always a JSON-RPC body, and other sessions never notice."""
        if r.action in _MODERN:
            return await self.serve_modern(r, msg, host, host.tasks)  # type: ignore[arg-type]
        actor: SessionActor | None = None
        try:
            create = r.action in router.CREATES
            for _ in range(_RELAYS):
                try:
                    actor = await host.activate(r.session_id, create)
                    break
                except ActorElsewhere as elsewhere:
                    relayed = await elsewhere.relay(r, body)
                    if relayed is not None:
                        return relayed
            else:
                raise StoreUnavailable(f"session {r.session_id} moves between processes too often")
            if actor is None:
                raise http.session_not_found(r.session_id or "", msg)
            if create:
                actor.arm(r.transport, owner_of(r.principal))
            reply = await actor.serve(r, msg)
        except HttpError as exc:
            if exc.request_id is None:  # raised where the message was not at hand
                exc.request_id = http.request_id_of(msg)
            return self.error(exc, r, None)
        except SessionUnreadable:
            return self.error(http.session_unreadable(msg), r, None)
        except StoreUnavailable:
            return self.error(http.store_unavailable(msg), r, None)
        except Exception:
            log.exception("request %s on session %s failed", r.action, r.session_id)
            return self.error(http.internal_error(msg), r, None)
        finally:
            if actor is not None and actor.closed:
                host.forget(actor)
        return self.response(reply, r.headers)

    async def serve_modern(self, r: Route, msg: Message, host: ActorHost | None,
                           tasks: TaskDirectory | None = None) -> Response:
        """A 2026-07-28 request: served here, statelessly (a listen stream by ``host``'s hub;
        tasks it starts or asks about, through ``tasks``)."""
        try:
            if r.action == router.MODERN_ACCEPT:
                reply = _ACCEPTED
            elif r.action == router.SUBSCRIBE:
                reply = host.listen(msg, owner_of(r.principal))  # type: ignore[union-attr]
            else:
                reply = await stateless.serve(self.app, msg, r.meta, self.state_key,  # type: ignore[arg-type]
                                              self.settings.lifetimes.max_buffer, tasks, r.principal)
        except HttpError as exc:
            return self.error(exc, r, None)
        except CapabilityError as exc:
            return self.error(modern.missing_capability(exc.capabilities, exc.message, msg), r, None)
        except StoreUnavailable:  # a task could not be stored: nothing was started
            return self.error(http.store_unavailable(msg), r, None)
        except ProtocolError as exc:
            return self.error(modern.error(exc.code, exc.message, msg, exc.data), r, None)
        except Exception:
            log.exception("2026-07-28 request %s failed", msg.method)
            return self.error(modern.error(spec.INTERNAL_ERROR, "Internal error: the server failed while handling "
                                                                "this request and logged why", msg), r, None)
        return self.response(reply, r.headers)

    async def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
                     read_body: Callable[[int], Awaitable[bytes]], host: ActorHost,
                     root_path: str = "", base_url: str = "") -> Response:
        """:meth:`admit` then :meth:`serve`, for a runtime whose actors are at hand."""
        admitted = await self.admit(method, path, query, headers, read_body, root_path, base_url)
        if isinstance(admitted, Response):
            return admitted
        r, msg, body = admitted
        trace = None
        if msg is not None:
            log_context.serving(r.session_id, msg, headers.get("traceparent"))
            if tracing.TRACER is not None and msg.method is not None:
                trace = tracing.TRACER.begin(msg, headers, r.session_id)
        try:
            response = await self.serve(r, msg, host, body)
        except BaseException as exc:
            tracing.end(trace, type(exc).__name__)
            raise
        response.message = msg
        response.trace = trace
        return response

    @staticmethod
    def health(method: str, path: str, unready: str | None) -> Response:
        """``/healthz`` and ``/readyz`` (:func:`engine.protocol.operator.health`)."""
        return Front.plain(*operator.health(method, path, unready))

    @staticmethod
    def plain(status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> Response:
        """A whole answer with its length (an operator's endpoint, :func:`operator.read_only`)."""
        return Response(status, _encode(headers) + [(b"content-length", b"%d" % len(body))], body)

    # -- the response ----------------------------------------------------------------------

    @staticmethod
    def response(reply: Reply, cors: tuple[tuple[str, str], ...]) -> Response:
        extra = cors + reply.headers
        if reply.content_type is None:
            return Response(reply.status, _encode(extra), b"")
        if reply.connection is not None:  # a stream: its length is not known
            return Response(reply.status, SSE_HEADERS + _encode(extra) if extra else SSE_HEADERS, reply.body,
                            reply.connection)
        base = SSE_HEADERS if reply.content_type == spec.CONTENT_SSE else JSON_HEADERS
        # A whole body says its length: no chunked framing to write (or for the client to read).
        headers = base + [(b"content-length", b"%d" % len(reply.body))]
        return Response(reply.status, headers + _encode(extra) if extra else headers, reply.body)

    @staticmethod
    def error(exc: HttpError, r: Route | None, headers: Mapping[str, str] | None) -> Response:
        cors = router.error_headers(r, headers or {}, exc.status)
        body = exc.body()
        return Response(exc.status, JSON_HEADERS + [(b"content-length", b"%d" % len(body))]
                        + _encode(cors + exc.headers), body)

    async def pump(self, response: Response, writer: Writer) -> None:
        """Stream an open SSE response: its first bytes, then the connection's events (with
        keep-alive comments when idle), until the stream ends or the peer goes away. Events
        the peer did not get stay in the log for ``Last-Event-ID``."""
        conn = response.stream
        assert conn is not None
        try:
            if response.body:
                await writer.write(response.body)
            while True:
                data = await conn.next(self.keepalive)
                if data is None:
                    break
                await writer.write(data)
            await writer.close()
        except OSError:
            pass  # the peer went away
        except StoreUnavailable:
            pass  # the actor closed itself; its client resumes with Last-Event-ID
        finally:
            conn.detach()


def str_headers(headers: Headers) -> dict[str, str]:
    """Response headers as a str mapping, for runtimes that build responses that way."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}

